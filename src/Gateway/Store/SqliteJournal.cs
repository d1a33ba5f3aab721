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
    // Version 3: a session's metadata, its whole state and the deltas stored after that state in three tables. SQLite
    // writes a row's whole record again (its overflow pages too) whenever any of its columns changes, so the state lives
    // apart from the row every write updates: a delta, a touch or a move of a 64 KiB session writes a few small rows,
    // not 64 KiB. The state and the links go with their session (ON DELETE CASCADE: an end or a purge drops them).
    // Version 2 held one whole record per row (digest and expiry; no updated_at); version 1 is the journal before the
    // schema table existed (with or without its epoch column).
    private const int SchemaVersion = 3;

    private const string CreateSchema = """
        CREATE TABLE IF NOT EXISTS sessions (
            id          TEXT PRIMARY KEY,
            owner       TEXT,
            epoch       INTEGER NOT NULL,
            version     INTEGER NOT NULL,
            last_access INTEGER NOT NULL,
            expires_at  INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS sessions_last_access ON sessions(last_access);
        CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions(expires_at);
        CREATE TABLE IF NOT EXISTS session_states (
            id      TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            state   BLOB    NOT NULL,
            digest  TEXT    NOT NULL
        );
        CREATE TABLE IF NOT EXISTS session_links (
            id      TEXT    NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            base    INTEGER NOT NULL,
            delta   BLOB    NOT NULL,
            digest  TEXT    NOT NULL,
            PRIMARY KEY (id, version)
        );
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
                    JournalCommand.Checkpoint c => statements.Checkpoint(c),
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

    // A read and the links it folds in are one read transaction: one snapshot of the file, so a whole state committed
    // between the two never pairs a session's version with another version's state.
    public async Task<SessionRecord?> GetAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = connection.BeginTransaction(deferred: true);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"{SelectRecords} WHERE s.id = $id";
        command.Parameters.AddWithValue("$id", sessionId);
        await using var links = LinksCommand(connection, transaction);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? await ReadRecordAsync(reader, links, cancellationToken) : null;
    }

    /// <summary>A local journal is the only one its gateway asks: a session it does not hold is not live, whatever Redis says.</summary>
    public Task<bool> HasEndedAsync(string sessionId, CancellationToken cancellationToken) => Task.FromResult(false);

    // The state's size is its whole state's (not folded: that would read every state at startup), an estimate the
    // session's next checkpoint replaces with its own size. Counting the links too would count many sessions up to twice
    // over after a restart, and refuse new sessions' changes against a budget they fit in.
    public async IAsyncEnumerable<SessionSummary> LoadLiveAsync(long cutoff, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT s.id, s.owner, s.epoch, s.version, coalesce(length(t.state), 0), s.last_access
            FROM sessions s LEFT JOIN session_states t ON t.id = s.id WHERE s.last_access >= $cutoff
            """;
        command.Parameters.AddWithValue("$cutoff", cutoff);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return new SessionSummary(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), (int)Math.Min(int.MaxValue, reader.GetInt64(4)), reader.GetInt64(5));
        }
    }

    public async IAsyncEnumerable<SessionRecord> ReadLiveAsync(long cutoff, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var transaction = connection.BeginTransaction(deferred: true);
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = $"{SelectRecords} WHERE s.last_access >= $cutoff";
        command.Parameters.AddWithValue("$cutoff", cutoff);
        await using var links = LinksCommand(connection, transaction);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return await ReadRecordAsync(reader, links, cancellationToken);
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

    // A session pinned but never changed has no state row: an empty state at version 0.
    private const string SelectRecords = """
        SELECT s.id, s.owner, s.epoch, s.version, coalesce(t.state, x''), t.digest, s.last_access, s.expires_at, coalesce(t.version, 0)
        FROM sessions s LEFT JOIN session_states t ON t.id = s.id
        """;

    private static SqliteCommand LinksCommand(SqliteConnection connection, SqliteTransaction transaction)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "SELECT version, base, delta, digest FROM session_links WHERE id = $id AND version > $after ORDER BY version";
        command.Parameters.Add(new SqliteParameter { ParameterName = "$id" });
        command.Parameters.Add(new SqliteParameter { ParameterName = "$after" });
        return command;
    }

    // The row's session with the links after its whole state folded in; the links are read only when there are some.
    private static async Task<SessionRecord> ReadRecordAsync(SqliteDataReader reader, SqliteCommand links, CancellationToken cancellationToken)
    {
        var stored = new SessionRecord(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), (byte[])reader.GetValue(4), reader.IsDBNull(5) ? SessionRecord.EmptyDigest : reader.GetString(5), reader.GetInt64(6), reader.GetInt64(7));
        var stateVersion = reader.GetInt64(8);
        if (stateVersion == stored.Version)
        {
            return stored;
        }

        links.Parameters[0].Value = stored.SessionId;
        links.Parameters[1].Value = stateVersion;
        var chain = new List<JournalLink>();
        await using (var rows = await links.ExecuteReaderAsync(cancellationToken))
        {
            while (await rows.ReadAsync(cancellationToken))
            {
                chain.Add(new JournalLink(rows.GetInt64(0), rows.GetInt64(1), (byte[])rows.GetValue(2), rows.GetString(3)));
            }
        }

        return JournalChain.Whole(stored, stateVersion, chain);
    }

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

        // Each time the write-ahead log starts over (after a checkpoint) it is cut back to at most half the journal's size
        // limit (64 MiB at most): otherwise it keeps its high mark, and a journal whose rows have gone still counts full.
        command.CommandText = FormattableString.Invariant($"PRAGMA journal_size_limit = {Math.Min(_settings.MaxSizeBytes / 2, 64L * 1024 * 1024)};");
        command.ExecuteNonQuery();

        // The writer's ends and purges drop a session's state and links by cascade (outside a transaction: it is a no-op in one).
        command.CommandText = "PRAGMA foreign_keys = ON;";
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

        if (version is 1 or 2)
        {
            // The old table is set aside (its indexes dropped, their names taken by the new ones), the new tables made,
            // and every session copied: its metadata to sessions, its state to session_states.
            command.CommandText = "DROP INDEX IF EXISTS sessions_last_access; DROP INDEX IF EXISTS sessions_expires_at; ALTER TABLE sessions RENAME TO sessions_old; " + CreateSchema;
            command.ExecuteNonQuery();
            if (version == 2)
            {
                command.CommandText = """
                    INSERT INTO sessions (id, owner, epoch, version, last_access, expires_at) SELECT id, owner, epoch, version, last_access, expires_at FROM sessions_old;
                    INSERT INTO session_states (id, version, state, digest) SELECT id, version, state, digest FROM sessions_old;
                    """;
                command.ExecuteNonQuery();
            }
            else
            {
                MigrateVersionOne(connection, transaction, command);
            }

            command.CommandText = "DROP TABLE sessions_old";
            command.ExecuteNonQuery();
            Log.JournalMigrated(logger, Location, (int)version, SchemaVersion);
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

    // Version 1 rows: version, state, owner, epoch (maybe missing), updated_at, last_access. Each gets the digest of its
    // state and an expiry of its last use plus the retention.
    private void MigrateVersionOne(SqliteConnection connection, SqliteTransaction transaction, SqliteCommand command)
    {
        command.CommandText = "SELECT count(*) FROM pragma_table_info('sessions_old') WHERE name = 'epoch'";
        var epoch = (long)command.ExecuteScalar()! == 1 ? "epoch" : "0";
        using var select = connection.CreateCommand();
        select.Transaction = transaction;
        select.CommandText = $"SELECT id, owner, {epoch}, version, state, last_access FROM sessions_old";
        using var insert = connection.CreateCommand();
        insert.Transaction = transaction;
        insert.CommandText = """
            INSERT INTO sessions (id, owner, epoch, version, last_access, expires_at) VALUES ($id, $owner, $epoch, $version, $access, $expires);
            INSERT INTO session_states (id, version, state, digest) VALUES ($id, $version, $state, $digest);
            """;
        foreach (var name in new[] { "$id", "$owner", "$epoch", "$version", "$state", "$digest", "$access", "$expires" })
        {
            insert.Parameters.Add(new SqliteParameter { ParameterName = name });
        }

        using var rows = select.ExecuteReader();
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

    /// <summary>The writer's prepared statements, on the one write connection.</summary>
    private sealed class Statements : IDisposable
    {
        private readonly SqliteConnection _connection;
        private readonly SqliteCommand _checkpoint;
        private readonly SqliteCommand _state;
        private readonly SqliteCommand _dropLinks;
        private readonly SqliteCommand _delta;
        private readonly SqliteCommand _link;
        private readonly SqliteCommand _chain;
        private readonly SqliteCommand _position;
        private readonly SqliteCommand _move;
        private readonly SqliteCommand _claim;
        private readonly SqliteCommand[] _all;

        public Statements(SqliteConnection connection)
        {
            _connection = connection;

            // Version and epoch check-and-set in the one upsert: a later version of the same or a later epoch. The owner
            // travels with the epoch: a checkpoint sets it only when it creates the session or raises the epoch.
            _checkpoint = Prepare("""
                INSERT INTO sessions (id, owner, epoch, version, last_access, expires_at) VALUES ($id, $owner, $epoch, $version, $access, $expires)
                ON CONFLICT (id) DO UPDATE SET owner = CASE WHEN excluded.epoch > sessions.epoch OR sessions.owner IS NULL THEN excluded.owner ELSE sessions.owner END,
                    epoch = excluded.epoch, version = excluded.version,
                    last_access = max(sessions.last_access, excluded.last_access), expires_at = max(sessions.expires_at, excluded.expires_at)
                WHERE excluded.version > sessions.version AND excluded.epoch >= sessions.epoch
                """, "$id", "$owner", "$epoch", "$version", "$access", "$expires");
            _state = Prepare("""
                INSERT INTO session_states (id, version, state, digest) VALUES ($id, $version, $state, $digest)
                ON CONFLICT (id) DO UPDATE SET version = excluded.version, state = excluded.state, digest = excluded.digest
                """, "$id", "$version", "$state", "$digest");
            _dropLinks = Prepare("DELETE FROM session_links WHERE id = $id", "$id");

            // A delta's check-and-set: the session holds a version of the delta's epoch at or above its base and below its
            // version. Only the metadata row changes; the link is added beside it, the whole state left as it is.
            _delta = Prepare("""
                UPDATE sessions SET owner = coalesce(owner, $owner), version = $version,
                    last_access = max(last_access, $access), expires_at = max(expires_at, $expires)
                WHERE id = $id AND epoch = $epoch AND version >= $base AND version < $version
                """, "$id", "$owner", "$epoch", "$version", "$base", "$access", "$expires");
            _link = Prepare("INSERT OR REPLACE INTO session_links (id, version, base, delta, digest) VALUES ($id, $version, $base, $delta, $digest)", "$id", "$version", "$base", "$delta", "$digest");
            _chain = Prepare("SELECT count(*), total(length(delta)) FROM session_links WHERE id = $id", "$id");
            _position = Prepare("SELECT epoch, version FROM sessions WHERE id = $id", "$id");
            _move = Prepare("""
                INSERT INTO sessions (id, owner, epoch, version, last_access, expires_at) VALUES ($id, $owner, $epoch, 0, $access, $expires)
                ON CONFLICT (id) DO UPDATE SET owner = CASE WHEN excluded.epoch >= sessions.epoch THEN excluded.owner ELSE sessions.owner END,
                    epoch = max(sessions.epoch, excluded.epoch), last_access = max(sessions.last_access, excluded.last_access), expires_at = max(sessions.expires_at, excluded.expires_at)
                """, "$id", "$owner", "$epoch", "$access", "$expires");
            // A move's check-and-set: it takes the session only from the claimed epoch or an older one.
            _claim = Prepare("""
                INSERT INTO sessions (id, owner, epoch, version, last_access, expires_at) VALUES ($id, $owner, $epoch, 0, $access, $expires)
                ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch,
                    last_access = max(sessions.last_access, excluded.last_access), expires_at = max(sessions.expires_at, excluded.expires_at)
                WHERE sessions.epoch < excluded.epoch
                """, "$id", "$owner", "$epoch", "$access", "$expires");
            Touch = Prepare("UPDATE sessions SET last_access = max(last_access, $access), expires_at = max(expires_at, $expires) WHERE id = $id", "$id", "$access", "$expires");

            // The session's state and links go with it (ON DELETE CASCADE).
            End = Prepare("DELETE FROM sessions WHERE id = $id", "$id");
            Purge = Prepare("DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < $now LIMIT $limit)", "$now", "$limit");
            _all = [_checkpoint, _state, _dropLinks, _delta, _link, _chain, _position, _move, _claim, Touch, End, Purge];
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

        // A whole state replaces the state and ends the chain; a delta is a link after it, and the chain it ends is noted.
        public int Checkpoint(JournalCommand.Checkpoint c)
        {
            var r = c.Record;
            var owner = (object?)r.Owner ?? DBNull.Value;
            if (r.DeltaBase is { } deltaBase)
            {
                if (Run(_delta, r.SessionId, owner, r.Epoch, r.Version, deltaBase, r.LastAccess, r.ExpiresAt) == 1)
                {
                    Run(_link, r.SessionId, r.Version, deltaBase, r.State, r.Digest);
                    if (c.Report is { } report)
                    {
                        _chain.Parameters[0].Value = r.SessionId;
                        using var chain = _chain.ExecuteReader();
                        chain.Read();
                        report.NoteChain(chain.GetInt64(0), (long)chain.GetDouble(1));
                    }

                    return (int)SaveOutcome.Stored;
                }
            }
            else if (Run(_checkpoint, r.SessionId, owner, r.Epoch, r.Version, r.LastAccess, r.ExpiresAt) == 1)
            {
                Run(_state, r.SessionId, r.Version, r.State, r.Digest);
                Run(_dropLinks, r.SessionId);
                return (int)SaveOutcome.Stored;
            }

            // Not stored: tell a checkpoint from an epoch the session has left from one merely not newer.
            _position.Parameters[0].Value = r.SessionId;
            using var reader = _position.ExecuteReader();
            var (epoch, version) = reader.Read() ? (reader.GetInt64(0), reader.GetInt64(1)) : ((long?)null, 0L);
            if (r.DeltaBase is not null)
            {
                return (int)JournalChain.Refused(r, epoch, version);
            }

            return (int)(epoch > r.Epoch ? SaveOutcome.Fenced : epoch < r.Epoch ? SaveOutcome.Diverged : SaveOutcome.Stale);
        }

        public int Move(JournalCommand.Move m) => Run(_move, m.SessionId, m.Owner, m.Epoch, m.LastAccess, m.ExpiresAt);

        public int Claim(JournalCommand.Claim c) => Run(_claim, c.SessionId, c.Owner, c.FromEpoch + 1, c.Now, c.ExpiresAt);

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
