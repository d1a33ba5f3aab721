using System.Runtime.CompilerServices;
using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Store;

/// <summary>
/// The embedded journal: one SQLite file in WAL mode on the gateway's own disk (<c>Baton:Journal:Path</c>). A
/// damaged file found at open is moved aside — never deleted, never retried in a crash loop — and a new journal
/// started, for the store to rebuild from Redis. <c>Baton:Journal:MaxSizeBytes</c> bounds the file.
/// </summary>
internal sealed class SqliteJournal(
    IOptions<BatonOptions> options,
    IHostEnvironment environment,
    TimeProvider time,
    BatonMetrics metrics,
    ILogger<SqliteJournal> logger) : IJournalEngine, IDisposable
{
    // Version 2: one whole session record per row (digest and expiry; no updated_at). Version 1 is the
    // journal before the schema table existed (with or without its epoch column).
    private const int SchemaVersion = 2;

    private const string CreateSchema = """
        CREATE TABLE IF NOT EXISTS sessions (
            id          TEXT PRIMARY KEY,
            owner       TEXT,
            epoch       INTEGER NOT NULL,
            version     INTEGER NOT NULL,
            state       BLOB    NOT NULL,
            digest      TEXT    NOT NULL,
            last_access INTEGER NOT NULL,
            expires_at  INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS sessions_last_access ON sessions(last_access);
        CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions(expires_at);
        CREATE TABLE IF NOT EXISTS baton_schema (version INTEGER NOT NULL);
        """;

    private readonly BatonJournalOptions _settings = options.Value.Journal;
    private readonly long _retention = (long)options.Value.Sessions.Retention.TotalMilliseconds;
    private string _connectionString = string.Empty;
    private SqliteConnection? _writeConnection;
    private Statements? _statements;

    public string Name => "sqlite";

    public string Location { get; } = Path.GetFullPath(options.Value.Journal.Path, environment.ContentRootPath);

    public bool IsShared => false;

    /// <summary>True when this journal began empty: there was none (a new disk), or a damaged one was moved aside at open.</summary>
    public bool StartedEmpty { get; private set; }

    public string? QuarantinedTo { get; private set; }

    public TimeSpan Timeout => _settings.LockTimeout;

    public long? SizeBytes => new[] { Location, Location + "-wal" }.Where(File.Exists).Sum(f => new FileInfo(f).Length);

    public void Open()
    {
        _connectionString = new SqliteConnectionStringBuilder { DataSource = Location, Pooling = true, DefaultTimeout = (int)_settings.LockTimeout.TotalSeconds }.ToString();
        Directory.CreateDirectory(Path.GetDirectoryName(Location)!);
        var existed = File.Exists(Location);
        try
        {
            _writeConnection = OpenWriter();
        }
        catch (Exception ex) when (ex is JournalDamagedException or SqliteException { SqliteErrorCode: 11 or 26 })
        {
            SqliteConnection.ClearAllPools();
            QuarantinedTo = $"{Location}.corrupt-{time.GetUtcNow().ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture)}";
            foreach (var suffix in new[] { string.Empty, "-wal", "-shm" })
            {
                if (File.Exists(Location + suffix))
                {
                    File.Move(Location + suffix, QuarantinedTo + suffix);
                }
            }

            metrics.JournalQuarantined();
            Log.JournalQuarantined(logger, Location, QuarantinedTo, ex.Message);
            _writeConnection = OpenWriter();
        }

        StartedEmpty = QuarantinedTo is not null || !existed;
        _statements = new Statements(_writeConnection);
        Log.JournalOpened(logger, Name, Location, _settings.Synchronous.ToString());
    }

    public int[] Commit(IReadOnlyList<JournalCommand> batch)
    {
        var statements = _statements!;
        var results = new int[batch.Count];
        var compact = false;
        using (var transaction = _writeConnection!.BeginTransaction())
        {
            statements.Enlist(transaction);
            for (var i = 0; i < batch.Count; i++)
            {
                results[i] = batch[i] switch
                {
                    JournalCommand.Checkpoint c => statements.Checkpoint(c.Record),
                    JournalCommand.Move m => statements.Move(m),
                    JournalCommand.Claim c => statements.Claim(c),

                    // One gateway per local journal: no other gateway waits on a lease, so none is kept.
                    JournalCommand.Release => 1,
                    JournalCommand.Touch t => Statements.Run(statements.Touch, t.SessionId, t.LastAccess, t.ExpiresAt),
                    JournalCommand.End e => Statements.Run(statements.End, e.SessionId),
                    JournalCommand.Purge p => Statements.Run(statements.Purge, p.Now, JournalTier.PurgeChunk),
                    _ => 0,
                };
                compact |= batch[i] is JournalCommand.Compact;
            }

            transaction.Commit();
        }

        if (compact)
        {
            try
            {
                using var command = _writeConnection.CreateCommand();
                command.CommandText = "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);";
                command.ExecuteNonQuery();
            }
            catch (SqliteException ex)
            {
                // The batch is committed either way; only the space is not returned yet.
                Log.BackgroundWriteFailed(logger, "compact", ex);
            }
        }

        return results;
    }

    public async Task<SessionRecord?> GetAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {RecordColumns} FROM sessions WHERE id = $id";
        command.Parameters.AddWithValue("$id", sessionId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? ReadRecord(reader) : null;
    }

    /// <summary>A local journal is the only one its gateway asks: a session it does not hold is not live, whatever Redis says.</summary>
    public Task<bool> HasEndedAsync(string sessionId, CancellationToken cancellationToken) => Task.FromResult(false);

    public async IAsyncEnumerable<SessionSummary> LoadLiveAsync(long cutoff, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, owner, epoch, version, length(state), last_access FROM sessions WHERE last_access >= $cutoff";
        command.Parameters.AddWithValue("$cutoff", cutoff);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return new SessionSummary(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt32(4), reader.GetInt64(5));
        }
    }

    public async IAsyncEnumerable<SessionRecord> ReadLiveAsync(long cutoff, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT {RecordColumns} FROM sessions WHERE last_access >= $cutoff";
        command.Parameters.AddWithValue("$cutoff", cutoff);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return ReadRecord(reader);
        }
    }

    public bool IsUnavailable(Exception exception) => exception is SqliteException or IOException or InvalidOperationException;

    public void Dispose() => _statements?.Dispose();

    public void Close()
    {
        if (_writeConnection is null)
        {
            return;
        }

        _statements?.Dispose();
        _statements = null;
        using (var command = _writeConnection.CreateCommand())
        {
            command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
            command.ExecuteNonQuery();
        }

        _writeConnection.Dispose();
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
    }

    private const string RecordColumns = "id, owner, epoch, version, state, digest, last_access, expires_at";

    private static SessionRecord ReadRecord(SqliteDataReader reader)
        => new(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), (byte[])reader.GetValue(4), reader.GetString(5), reader.GetInt64(6), reader.GetInt64(7));

    private SqliteConnection OpenWriter()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA auto_vacuum = INCREMENTAL;";
        command.ExecuteNonQuery();
        command.CommandText = "PRAGMA journal_mode = WAL;";
        command.ExecuteNonQuery();
        command.CommandText = $"PRAGMA synchronous = {(_settings.Synchronous == JournalSynchronous.Full ? "FULL" : "NORMAL")};";
        command.ExecuteNonQuery();
        command.CommandText = "PRAGMA quick_check;";
        var verdict = command.ExecuteScalar() as string;
        if (!string.Equals(verdict, "ok", StringComparison.Ordinal))
        {
            connection.Dispose();
            throw new JournalDamagedException($"The journal {Location} failed its integrity check: {verdict}");
        }

        Migrate(connection);
        return connection;
    }

    // The schema's version is kept in baton_schema; a journal without that table is version 1 (or empty).
    private void Migrate(SqliteConnection connection)
    {
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT (SELECT count(*) FROM sqlite_master WHERE name = 'sessions'), (SELECT count(*) FROM sqlite_master WHERE name = 'baton_schema')";
        long hasSessions, hasSchema;
        using (var reader = command.ExecuteReader())
        {
            reader.Read();
            (hasSessions, hasSchema) = (reader.GetInt64(0), reader.GetInt64(1));
        }

        var version = 0L;
        if (hasSchema == 1)
        {
            command.CommandText = "SELECT coalesce(max(version), 0) FROM baton_schema";
            version = (long)command.ExecuteScalar()!;
        }
        else if (hasSessions == 1)
        {
            version = 1;
        }

        if (version > SchemaVersion)
        {
            throw new InvalidOperationException($"The journal {Location} has schema version {version}, newer than this gateway's ({SchemaVersion}); run a newer gateway or another journal.");
        }

        if (version == 1)
        {
            // Version 1 rows: version, state, owner, epoch (maybe missing), updated_at, last_access. Each gets the
            // digest of its state and an expiry of its last use plus the retention.
            command.CommandText = "SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'epoch'";
            var epoch = (long)command.ExecuteScalar()! == 1 ? "epoch" : "0";
            command.CommandText = "DROP INDEX IF EXISTS sessions_last_access; ALTER TABLE sessions RENAME TO sessions_v1; " + CreateSchema;
            command.ExecuteNonQuery();
            using var select = connection.CreateCommand();
            select.Transaction = transaction;
            select.CommandText = $"SELECT id, owner, {epoch}, version, state, last_access FROM sessions_v1";
            using var insert = connection.CreateCommand();
            insert.Transaction = transaction;
            insert.CommandText = "INSERT INTO sessions (id, owner, epoch, version, state, digest, last_access, expires_at) VALUES ($id, $owner, $epoch, $version, $state, $digest, $access, $expires)";
            foreach (var name in new[] { "$id", "$owner", "$epoch", "$version", "$state", "$digest", "$access", "$expires" })
            {
                insert.Parameters.Add(new SqliteParameter { ParameterName = name });
            }

            using (var rows = select.ExecuteReader())
            {
                while (rows.Read())
                {
                    var state = (byte[])rows.GetValue(4);
                    var values = new object[] { rows.GetString(0), rows.IsDBNull(1) ? DBNull.Value : rows.GetString(1), rows.GetInt64(2), rows.GetInt64(3), state, Baton.Protocol.Ids.Sha256(state), rows.GetInt64(5), rows.GetInt64(5) + _retention };
                    for (var i = 0; i < values.Length; i++)
                    {
                        insert.Parameters[i].Value = values[i];
                    }

                    insert.ExecuteNonQuery();
                }
            }

            command.CommandText = "DROP TABLE sessions_v1";
            command.ExecuteNonQuery();
            Log.JournalMigrated(logger, Location, 1, SchemaVersion);
        }
        else
        {
            command.CommandText = CreateSchema;
            command.ExecuteNonQuery();
        }

        if (version != SchemaVersion)
        {
            command.CommandText = $"DELETE FROM baton_schema; INSERT INTO baton_schema (version) VALUES ({SchemaVersion})";
            command.ExecuteNonQuery();
        }

        transaction.Commit();
    }

    /// <summary>The writer's prepared statements, on the one write connection.</summary>
    private sealed class Statements : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly SqliteCommand _checkpoint;
        private readonly SqliteCommand _epoch;
        private readonly SqliteCommand _move;
        private readonly SqliteCommand _claim;
        private readonly SqliteCommand[] _all;

        public Statements(SqliteConnection connection)
        {
            _connection = connection;

            // Version and epoch check-and-set in the one upsert: a later version of the same or a later epoch. The owner
            // travels with the epoch: a checkpoint sets it only when it creates the session or raises the epoch.
            _checkpoint = Prepare("""
                INSERT INTO sessions (id, owner, epoch, version, state, digest, last_access, expires_at) VALUES ($id, $owner, $epoch, $version, $state, $digest, $access, $expires)
                ON CONFLICT (id) DO UPDATE SET owner = CASE WHEN excluded.epoch > sessions.epoch OR sessions.owner IS NULL THEN excluded.owner ELSE sessions.owner END,
                    epoch = excluded.epoch, version = excluded.version, state = excluded.state, digest = excluded.digest,
                    last_access = max(sessions.last_access, excluded.last_access), expires_at = max(sessions.expires_at, excluded.expires_at)
                WHERE excluded.version > sessions.version AND excluded.epoch >= sessions.epoch
                """, "$id", "$owner", "$epoch", "$version", "$state", "$digest", "$access", "$expires");
            _epoch = Prepare("SELECT epoch FROM sessions WHERE id = $id", "$id");
            _move = Prepare("""
                INSERT INTO sessions (id, owner, epoch, version, state, digest, last_access, expires_at) VALUES ($id, $owner, $epoch, 0, x'', $digest, $access, $expires)
                ON CONFLICT (id) DO UPDATE SET owner = CASE WHEN excluded.epoch >= sessions.epoch THEN excluded.owner ELSE sessions.owner END,
                    epoch = max(sessions.epoch, excluded.epoch), last_access = max(sessions.last_access, excluded.last_access), expires_at = max(sessions.expires_at, excluded.expires_at)
                """, "$id", "$owner", "$epoch", "$digest", "$access", "$expires");
            // A move's check-and-set: it takes the session only from the claimed epoch or an older one.
            _claim = Prepare("""
                INSERT INTO sessions (id, owner, epoch, version, state, digest, last_access, expires_at) VALUES ($id, $owner, $epoch, 0, x'', $digest, $access, $expires)
                ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch,
                    last_access = max(sessions.last_access, excluded.last_access), expires_at = max(sessions.expires_at, excluded.expires_at)
                WHERE sessions.epoch < excluded.epoch
                """, "$id", "$owner", "$epoch", "$digest", "$access", "$expires");
            Touch = Prepare("UPDATE sessions SET last_access = max(last_access, $access), expires_at = max(expires_at, $expires) WHERE id = $id", "$id", "$access", "$expires");
            End = Prepare("DELETE FROM sessions WHERE id = $id", "$id");
            Purge = Prepare("DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $now LIMIT $limit)", "$now", "$limit");
            _all = [_checkpoint, _epoch, _move, _claim, Touch, End, Purge];
        }

        public SqliteCommand Touch { get; }

        public SqliteCommand End { get; }

        public SqliteCommand Purge { get; }

        public void Enlist(SqliteTransaction transaction)
        {
            foreach (var command in _all)
            {
                command.Transaction = transaction;
            }
        }

        // Not stored: tell a checkpoint from an epoch the session has left from one merely not newer.
        public int Checkpoint(SessionRecord r)
        {
            if (Run(_checkpoint, r.SessionId, (object?)r.Owner ?? DBNull.Value, r.Epoch, r.Version, r.State, r.Digest, r.LastAccess, r.ExpiresAt) == 1)
            {
                return (int)SaveOutcome.Stored;
            }

            _epoch.Parameters[0].Value = r.SessionId;
            var stored = Convert.ToInt64(_epoch.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
            return (int)(stored > r.Epoch ? SaveOutcome.Fenced : stored < r.Epoch ? SaveOutcome.Diverged : SaveOutcome.Stale);
        }

        public int Move(JournalCommand.Move m) => Run(_move, m.SessionId, m.Owner, m.Epoch, SessionRecord.EmptyDigest, m.LastAccess, m.ExpiresAt);

        public int Claim(JournalCommand.Claim c) => Run(_claim, c.SessionId, c.Owner, c.FromEpoch + 1, SessionRecord.EmptyDigest, c.Now, c.ExpiresAt);

        public static int Run(SqliteCommand command, params object[] values)
        {
            for (var i = 0; i < values.Length; i++)
            {
                command.Parameters[i].Value = values[i];
            }

            return command.ExecuteNonQuery();
        }

        public void Dispose()
        {
            foreach (var command in _all)
            {
                command.Dispose();
            }
        }

        private SqliteCommand Prepare(string sql, params string[] parameters)
        {
            var command = _connection.CreateCommand();
            command.CommandText = sql;
            foreach (var name in parameters)
            {
                command.Parameters.Add(new SqliteParameter { ParameterName = name });
            }

            return command;
        }
    }
}

/// <summary>A local journal failed its integrity check at open.</summary>
internal sealed class JournalDamagedException(string message) : Exception(message);
