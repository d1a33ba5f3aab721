using System.Data;
using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using Baton.Gateway.Configuration;
using Microsoft.Extensions.Options;
using MySqlConnector;
using Npgsql;

namespace Baton.Gateway.Store;

/// <summary>
/// A journal on a database server several gateways share (<c>Baton:Journal:Provider</c> PostgreSql or MySql). One
/// table, <c>baton_sessions</c>, holds one whole session record per row; <c>baton_schema</c> holds the schema's
/// version, created or migrated under a lock by whichever gateway reaches the server first. A batch is one
/// transaction sent as one database batch, each command answering one row with one number. A server that cannot be
/// reached at startup does not stop the gateway: the schema is made on the first write that reaches it, and until
/// then writes are held by Redis alone. The pool is bounded (<c>MaxConnections</c>), and every connect and statement
/// by <c>CommandTimeout</c>.
/// </summary>
internal abstract class ServerJournal : IJournalEngine, IDisposable
{
    // Version 2 adds moving_until, the lease of a move being restored (version 1 rows get 0: none). Version 3 adds
    // baton_session_links, the deltas stored after a session's whole state, and state_version, the version of that
    // state (null for a row written before: its state is at its version, and it has no links).
    //
    // The whole state stays in baton_sessions: a delta updates the row's small columns and adds a link, and neither
    // engine writes an unchanged large value again. PostgreSQL keeps a state over about 2 kB out of line (TOAST), and
    // "an UPDATE of a row with out-of-line values incurs no TOAST costs if none of the out-of-line values change"
    // (PostgreSQL manual, TOAST); InnoDB's DYNAMIC rows (the default) keep a long BLOB on overflow pages behind a
    // 20-byte pointer, which an update of other columns carries over. A state small enough to stay in the row costs
    // little to copy either way.
    private const int SchemaVersion = 3;

    private readonly ILogger _logger;
    private readonly Lock _schemaLock = new();
    private volatile bool _schemaReady;

    protected ServerJournal(IOptions<BatonOptions> options, ILogger logger)
    {
        var journal = options.Value.Journal;
        Retention = (long)options.Value.Sessions.Retention.TotalMilliseconds;
        _logger = logger;
        TimeoutSeconds = (int)journal.CommandTimeout.TotalSeconds;
        Source = CreateSource(journal.ConnectionString!, journal.MaxConnections, TimeoutSeconds, out var location);
        Location = location;
    }

    public abstract string Name { get; }

    public string Location { get; }

    public bool IsShared => true;

    public bool StartedEmpty => false;

    public string? QuarantinedTo => null;

    /// <summary>A server journal's size is its administrator's to watch: never measured here.</summary>
    public long? SizeBytes => null;

    public TimeSpan Timeout => TimeSpan.FromSeconds(TimeoutSeconds);

    protected DbDataSource Source { get; }

    protected int TimeoutSeconds { get; }

    /// <summary>How long a session's end is remembered (ms): as long as any tier may hold a copy of it.</summary>
    protected long Retention { get; }

    /// <summary>What is wrong with a server journal's connection string for the provider; null when it can be used.</summary>
    public static string? ConnectionStringProblem(JournalProvider provider, string? connectionString)
    {
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            return $"must be set for the {provider} journal (the server and database to keep sessions in).";
        }

        try
        {
            if (provider == JournalProvider.PostgreSql)
            {
                return string.IsNullOrEmpty(new NpgsqlConnectionStringBuilder(connectionString).Host) ? "names no Host: it must name the PostgreSQL server." : null;
            }

            var mysql = new MySqlConnectionStringBuilder(connectionString);
            return string.IsNullOrEmpty(mysql.Server) || string.IsNullOrEmpty(mysql.Database) ? "must name the MySQL server (Server) and its database (Database)." : null;
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            // Not the driver's reason: it may quote part of a value, and a value may be a password.
            return $"is not a valid {provider} connection string ({ex.GetType().Name}): check its keys, and quote a value that holds ';' or '='.";
        }
    }

    public void Open()
    {
        try
        {
            EnsureSchema();
        }
        catch (Exception ex) when (IsUnavailable(ex) && ex is not JournalSchemaException)
        {
            Log.JournalServerUnreachable(_logger, Name, Location, ex.Message);
        }

        Log.JournalOpened(_logger, Name, Location, $"MaxConnections={MaxConnectionsOf(Source)}, CommandTimeout={TimeoutSeconds}s");
    }

    public int[] Commit(IReadOnlyList<JournalCommand> batch)
    {
        EnsureSchema();
        var results = new int[batch.Count];
        using var connection = Source.OpenConnection();
        using var transaction = connection.BeginTransaction(IsolationLevel.ReadCommitted);
        using var commands = connection.CreateBatch();
        commands.Transaction = transaction;
        commands.Timeout = TimeoutSeconds;
        var answers = new int[batch.Count];

        // Rows are locked in the order of their ids, whatever order the writes came in (each session's own writes keep
        // theirs): two gateways' batches touching the same sessions then never wait on each other in a circle.
        var order = Enumerable.Range(0, batch.Count).OrderBy(i => SessionOf(batch[i]), StringComparer.Ordinal).ToArray();
        foreach (var i in order)
        {
            // A server reclaims its own space (autovacuum, InnoDB purge): a compaction adds nothing.
            answers[i] = batch[i] is JournalCommand.Compact ? 0 : Add(commands, batch[i]);
        }

        if (answers.Any(a => a > 0))
        {
            using var reader = commands.ExecuteReader();
            var first = true;
            foreach (var i in order)
            {
                var values = new long?[answers[i]];
                for (var k = 0; k < values.Length; k++)
                {
                    if (!first && !reader.NextResult())
                    {
                        throw new JournalSchemaException($"The journal answered fewer results than the {batch.Count} writes it was sent.");
                    }

                    first = false;
                    values[k] = reader.Read() && !reader.IsDBNull(0) ? Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture) : null;
                }

                if (values.Length > 0)
                {
                    results[i] = Result(batch[i], values);
                }
            }
        }

        transaction.Commit();
        return results;
    }

    // The session a write is about; purges and compactions, about none, go last.
    private static string SessionOf(JournalCommand command) => command switch
    {
        JournalCommand.Checkpoint c => c.Record.SessionId,
        JournalCommand.Move m => m.SessionId,
        JournalCommand.Claim c => c.SessionId,
        JournalCommand.Release r => r.SessionId,
        JournalCommand.Touch t => t.SessionId,
        JournalCommand.End e => e.SessionId,
        _ => "\uffff",
    };

    // Reads never make the schema (the writer does, on its own thread): with the server down they fail at once on
    // their own connection, and a missing table is an unavailable journal. A session and its links are read in one
    // statement, so from one snapshot: a whole state committed meanwhile never pairs one version with another's state.
    public Task<SessionRecord?> GetAsync(string sessionId, CancellationToken cancellationToken) => ReadAsync(async () =>
    {
        await using var command = Source.CreateCommand($"{SessionPart} WHERE s.id = @id UNION ALL {LinkPart} WHERE l.id = @id AND {LinkIsLive} ORDER BY 1, 5");
        command.CommandTimeout = TimeoutSeconds;
        Parameter(command.Parameters, command.CreateParameter(), "@id", sessionId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await foreach (var record in ReadChainsAsync(reader, cancellationToken))
        {
            return record;
        }

        return null;
    });

    public Task<bool> HasEndedAsync(string sessionId, CancellationToken cancellationToken) => ReadAsync(async () =>
    {
        await using var command = Source.CreateCommand("SELECT count(*) FROM baton_ended WHERE id = @id");
        command.CommandTimeout = TimeoutSeconds;
        Parameter(command.Parameters, command.CreateParameter(), "@id", sessionId);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture) > 0;
    });

    // The state's size is its whole state's (not folded: that would read every state at startup), an estimate the
    // session's next checkpoint replaces with its own size. Counting the links too would count many sessions up to twice
    // over after a restart, and refuse new sessions' changes against a budget they fit in.
    public async IAsyncEnumerable<SessionSummary> LoadLiveAsync(long cutoff, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var command = Source.CreateCommand($"""
            SELECT s.id, s.owner, s.epoch, s.version, octet_length(s.state), s.last_access
            FROM baton_sessions s WHERE s.last_access >= @cutoff
            """);
        Parameter(command.Parameters, command.CreateParameter(), "@cutoff", cutoff);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var bytes = Math.Min(int.MaxValue, Convert.ToInt64(reader.GetValue(4), CultureInfo.InvariantCulture));
            yield return new SessionSummary(reader.GetString(0), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), (int)bytes, reader.GetInt64(5));
        }
    }

    // In pages of sessions by id, each page with its links in one statement: a session is never split between two.
    public async IAsyncEnumerable<SessionRecord> ReadLiveAsync(long cutoff, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var after = string.Empty;
        while (true)
        {
            await using var command = Source.CreateCommand($"""
                WITH page AS (SELECT id FROM baton_sessions WHERE last_access >= @cutoff AND id > @after ORDER BY id LIMIT {ReadPage})
                {SessionPart} JOIN page p ON p.id = s.id
                UNION ALL
                {LinkPart} JOIN page p ON p.id = l.id WHERE {LinkIsLive}
                ORDER BY 2, 1, 5
                """);
            Parameter(command.Parameters, command.CreateParameter(), "@cutoff", cutoff);
            Parameter(command.Parameters, command.CreateParameter(), "@after", after);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            var read = 0;
            await foreach (var record in ReadChainsAsync(reader, cancellationToken))
            {
                read++;
                after = record.SessionId;
                yield return record;
            }

            if (read < ReadPage)
            {
                yield break;
            }
        }
    }

    private const int ReadPage = 64;

    // A session's row and its links' rows as one result: part 0 the session (its whole state, the state's version
    // last), part 1 a link (its base where the session has its epoch).
    private const string SessionPart = """
        SELECT 0 AS part, s.id, s.owner, s.epoch, s.version, s.state, s.digest, s.last_access, s.expires_at, s.moving_until, coalesce(s.state_version, s.version) AS state_version
        FROM baton_sessions s
        """;

    private const string LinkPart = "SELECT 1, l.id, NULL, l.base, l.version, l.delta, l.digest, 0, 0, 0, 0 FROM baton_session_links l JOIN baton_sessions s ON s.id = l.id";

    // A link left below the session's whole state (never made by this gateway: one of an older one) is not part of it.
    private const string LinkIsLive = "l.version > coalesce(s.state_version, s.version)";

    private static async IAsyncEnumerable<SessionRecord> ReadChainsAsync(DbDataReader reader, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        SessionRecord? stored = null;
        var stateVersion = 0L;
        var links = new List<JournalLink>();
        while (await reader.ReadAsync(cancellationToken))
        {
            if (Convert.ToInt64(reader.GetValue(0), CultureInfo.InvariantCulture) == 1)
            {
                links.Add(new JournalLink(reader.GetInt64(4), reader.GetInt64(3), (byte[])reader.GetValue(5), reader.GetString(6)));
                continue;
            }

            if (stored is not null)
            {
                yield return JournalChain.Whole(stored, stateVersion, links);
                links = [];
            }

            stored = new SessionRecord(reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4), (byte[])reader.GetValue(5), reader.GetString(6), reader.GetInt64(7), reader.GetInt64(8))
            {
                MovingUntil = reader.GetInt64(9),
            };
            stateVersion = reader.GetInt64(10);
        }

        if (stored is not null)
        {
            yield return JournalChain.Whole(stored, stateVersion, links);
        }
    }

    // After the server restarted (or a proxy between closed idle connections), every connection the pool kept is
    // dead, and a read on one fails at once. Such a read empties the pool and is made once more, on a new
    // connection. Nothing else is tried again: a timeout would cost the caller the wait twice, and an error the
    // server gave (a missing table, too many connections) would only come back.
    private async Task<T> ReadAsync<T>(Func<Task<T>> read)
    {
        try
        {
            return await read();
        }
        catch (DbException ex) when (IsDroppedConnection(ex))
        {
            ClearPool();
            return await read();
        }
    }

    /// <summary>Whether <paramref name="exception"/> says the connection was dropped under the command (not a timeout, not the server refusing it).</summary>
    protected abstract bool IsDroppedConnection(DbException exception);

    /// <summary>Closes every idle pooled connection, so the next command opens a new one.</summary>
    protected abstract void ClearPool();

    public bool IsUnavailable(Exception exception)
        => exception is DbException or TimeoutException or IOException or System.Net.Sockets.SocketException or JournalSchemaException;

    public void Close() => Source.Dispose();

    public void Dispose() => Source.Dispose();

    /// <summary>The pool bound and timeouts applied to the connection string; <paramref name="location"/> names the server and database.</summary>
    protected abstract DbDataSource CreateSource(string connectionString, int maxConnections, int timeoutSeconds, out string location);

    /// <summary>Creates the schema, or brings an older one to this version, under a lock other gateways wait on; in one transaction where the server allows.</summary>
    protected abstract void CreateSchema(DbConnection connection);

    /// <summary>Adds the statements of one write; returns how many of them answer a result set (of at most one row, one number).</summary>
    protected abstract int Add(DbBatch batch, JournalCommand command);

    /// <summary>The write's result from the numbers its statements answered (null: no row).</summary>
    protected virtual int Result(JournalCommand command, long?[] values) => (int)(values[0] ?? 0);

    // The chain of links after the session's whole state, its length and its bytes: read after a delta's statements, in
    // the same transaction, so the link just added counts.
    protected const string ChainLinks = "SELECT count(*) FROM baton_session_links WHERE id = @id";
    protected const string ChainBytes = "SELECT coalesce(sum(length(delta)), 0) FROM baton_session_links WHERE id = @id";

    /// <summary>A delta's outcome; when stored, the chain it ends (<see cref="ChainLinks"/>, <see cref="ChainBytes"/>) is noted in its report.</summary>
    protected static int Chained(JournalCommand.Checkpoint delta, SaveOutcome outcome, long? links, long? bytes)
    {
        if (outcome == SaveOutcome.Stored)
        {
            delta.Report?.NoteChain(links ?? 0, bytes ?? 0);
        }

        return (int)outcome;
    }

    /// <summary>The pool bound the data source was built with, for the log.</summary>
    protected abstract int MaxConnectionsOf(DbDataSource source);

    protected const string RecordColumns = "id, owner, epoch, version, state, digest, last_access, expires_at";

    protected static DbBatchCommand Statement(DbBatch batch, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = batch.CreateBatchCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            Parameter(command.Parameters, command.CreateParameter(), name, value);
        }

        batch.BatchCommands.Add(command);
        return command;
    }

    /// <summary>The record's columns as parameters, named as in <see cref="RecordColumns"/>.</summary>
    protected static (string, object?)[] RecordParameters(SessionRecord r) =>
    [
        ("@id", r.SessionId), ("@owner", r.Owner), ("@epoch", r.Epoch), ("@version", r.Version), ("@state", r.State),
        ("@digest", r.Digest), ("@access", r.LastAccess), ("@expires", r.ExpiresAt),
    ];

    /// <summary>A delta's columns as parameters: the delta as <c>@delta</c>, its base as <c>@base</c>.</summary>
    protected static (string, object?)[] DeltaParameters(SessionRecord r) =>
    [
        ("@id", r.SessionId), ("@owner", r.Owner), ("@epoch", r.Epoch), ("@version", r.Version), ("@base", r.DeltaBase), ("@delta", r.State),
        ("@digest", r.Digest), ("@access", r.LastAccess), ("@expires", r.ExpiresAt),
    ];

    protected static (string, object?)[] ClaimParameters(JournalCommand.Claim c) =>
    [
        ("@id", c.SessionId), ("@owner", c.Owner), ("@epoch", c.FromEpoch + 1), ("@digest", SessionRecord.EmptyDigest), ("@access", c.Now),
        ("@expires", c.ExpiresAt), ("@until", c.MovingUntil), ("@now", c.Now),
    ];

    /// <summary>The schema version a server journal is made at, written by <see cref="CreateSchema"/>.</summary>
    protected const int CurrentSchema = SchemaVersion;

    protected static (string, object?)[] MoveParameters(JournalCommand.Move m) =>
    [
        ("@id", m.SessionId), ("@owner", m.Owner), ("@epoch", m.Epoch), ("@digest", SessionRecord.EmptyDigest), ("@access", m.LastAccess), ("@expires", m.ExpiresAt),
    ];

    private static void Parameter(DbParameterCollection parameters, DbParameter parameter, string name, object? value)
    {
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        parameter.DbType = value switch
        {
            null or string => DbType.String,
            byte[] => DbType.Binary,
            _ => DbType.Int64,
        };
        parameters.Add(parameter);
    }

    // The schema is made once per process, on the first call that reaches the server.
    private void EnsureSchema()
    {
        if (_schemaReady)
        {
            return;
        }

        lock (_schemaLock)
        {
            if (_schemaReady)
            {
                return;
            }

            using var connection = Source.OpenConnection();
            CreateSchema(connection);
            using var command = connection.CreateCommand();
            command.CommandTimeout = TimeoutSeconds;
            command.CommandText = "SELECT max(version) FROM baton_schema";
            var version = command.ExecuteScalar() is { } found and not DBNull ? Convert.ToInt64(found, CultureInfo.InvariantCulture) : 0;
            if (version > SchemaVersion)
            {
                throw new JournalSchemaException($"The journal {Location} has schema version {version}, newer than this gateway's ({SchemaVersion}); run a newer gateway or another database.");
            }

            _schemaReady = true;
        }
    }
}

/// <summary>A server journal's schema is one this gateway cannot use (made by a newer gateway).</summary>
internal sealed class JournalSchemaException(string message) : Exception(message);

/// <summary>The journal on PostgreSQL (Npgsql).</summary>
internal sealed class PostgreSqlJournal(IOptions<BatonOptions> options, ILogger<PostgreSqlJournal> logger) : ServerJournal(options, logger)
{
    // Version and epoch check-and-set in the one upsert (a later version of the same or a later epoch); the owner
    // travels with the epoch. It answers 1 when it stored the write.
    private const string Checkpoint = """
        WITH stored AS (
            INSERT INTO baton_sessions AS s (id, owner, epoch, version, state, digest, last_access, expires_at, state_version)
            SELECT @id, @owner, @epoch, @version, @state, @digest, @access, @expires, @version
            WHERE NOT EXISTS (SELECT FROM baton_ended WHERE id = @id)
            ON CONFLICT (id) DO UPDATE SET
                owner = CASE WHEN excluded.epoch > s.epoch OR s.owner IS NULL THEN excluded.owner ELSE s.owner END,
                epoch = excluded.epoch, version = excluded.version, state = excluded.state, digest = excluded.digest, state_version = excluded.version,
                last_access = greatest(s.last_access, excluded.last_access), expires_at = greatest(s.expires_at, excluded.expires_at)
            WHERE excluded.version > s.version AND excluded.epoch >= s.epoch
            RETURNING 1)
        SELECT count(*) FROM stored
        """;

    // The row's epoch after the upsert, to tell a write not stored as fenced, diverged or stale. A statement of its own:
    // it reads the row as committed now — the upsert locked it, and a move another gateway committed while the upsert
    // waited is seen — not as it was when the upsert began.
    private const string EpochNow = "SELECT epoch FROM baton_sessions WHERE id = @id";

    // The links a whole state ended: those at or below the row's state version, stored or not by this write (never a
    // link after it). A statement of its own, for the same reason: it sees a link another gateway committed while the
    // upsert waited for the row.
    private const string DropLinks = """
        WITH d AS (DELETE FROM baton_session_links l USING baton_sessions s WHERE l.id = @id AND s.id = @id AND l.version <= s.state_version RETURNING 1)
        SELECT count(*) FROM d
        """;

    // A delta's check-and-set: the row holds a version of the delta's epoch at or above its base and below its version.
    // Only the small columns change (every SET reads the row as it was); the link is added in the same statement.
    private const string Delta = """
        WITH stored AS (
            UPDATE baton_sessions SET owner = coalesce(owner, @owner), state_version = coalesce(state_version, version), version = @version,
                last_access = greatest(last_access, @access), expires_at = greatest(expires_at, @expires)
            WHERE id = @id AND epoch = @epoch AND version >= @base AND version < @version
            RETURNING 1),
        linked AS (
            INSERT INTO baton_session_links (id, version, base, delta, digest) SELECT @id, @version, @base, @delta, @digest FROM stored
            ON CONFLICT (id, version) DO UPDATE SET base = excluded.base, delta = excluded.delta, digest = excluded.digest)
        SELECT count(*) FROM stored
        """;

    // What a delta not stored is, from the row as committed now: null (no row: absent or ended) is unapplicable.
    private static readonly string DeltaRefused = $"""
        SELECT CASE WHEN epoch > @epoch THEN {(int)SaveOutcome.Fenced}
            WHEN version >= @version THEN (CASE WHEN epoch = @epoch THEN {(int)SaveOutcome.Stale} ELSE {(int)SaveOutcome.Diverged} END)
            ELSE {(int)SaveOutcome.Unapplicable} END
        FROM baton_sessions WHERE id = @id
        """;

    private const string Move = """
        WITH moved AS (
            INSERT INTO baton_sessions AS s (id, owner, epoch, version, state, digest, last_access, expires_at)
            SELECT @id, @owner, @epoch, 0, ''::bytea, @digest, @access, @expires
            WHERE NOT EXISTS (SELECT FROM baton_ended WHERE id = @id)
            ON CONFLICT (id) DO UPDATE SET
                owner = CASE WHEN excluded.epoch >= s.epoch THEN excluded.owner ELSE s.owner END, epoch = greatest(s.epoch, excluded.epoch),
                last_access = greatest(s.last_access, excluded.last_access), expires_at = greatest(s.expires_at, excluded.expires_at)
            RETURNING 1)
        SELECT count(*) FROM moved
        """;

    // A move's check-and-set: from the claimed epoch or an older one, and only while no other move's lease runs. Two
    // claims of one row take turns on its lock, and the second sees the first's epoch.
    private const string Claim = """
        WITH claimed AS (
            INSERT INTO baton_sessions AS s (id, owner, epoch, version, state, digest, last_access, expires_at, moving_until)
            SELECT @id, @owner, @epoch, 0, ''::bytea, @digest, @access, @expires, @until
            WHERE NOT EXISTS (SELECT FROM baton_ended WHERE id = @id)
            ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, epoch = excluded.epoch, moving_until = excluded.moving_until,
                last_access = greatest(s.last_access, excluded.last_access), expires_at = greatest(s.expires_at, excluded.expires_at)
            WHERE s.epoch < excluded.epoch AND s.moving_until <= @now
            RETURNING 1)
        SELECT count(*) FROM claimed
        """;

    private const string Release = "WITH r AS (UPDATE baton_sessions SET moving_until = 0 WHERE id = @id AND epoch = @epoch RETURNING 1) SELECT count(*) FROM r";

    private const string Touch = "WITH t AS (UPDATE baton_sessions SET last_access = greatest(last_access, @access), expires_at = greatest(expires_at, @expires) WHERE id = @id RETURNING 1) SELECT count(*) FROM t";

    // The end is remembered: a copy Redis still holds (it missed the delete) is then known to be no live session.
    private const string End = """
        WITH d AS (DELETE FROM baton_sessions WHERE id = @id RETURNING 1),
             e AS (INSERT INTO baton_ended (id, ended_at) VALUES (@id, @at) ON CONFLICT (id) DO UPDATE SET ended_at = excluded.ended_at)
        SELECT count(*) FROM d
        """;

    // One gateway purges at a time (a lock held to the end of its transaction; the others skip their turn), so purges
    // of several gateways never contend for the same expired rows.
    private const string Purge = """
        WITH l AS (SELECT pg_try_advisory_xact_lock(7305812362) AS got),
             d AS (DELETE FROM baton_sessions WHERE id IN (SELECT id FROM baton_sessions WHERE expires_at < @now LIMIT @limit) AND (SELECT got FROM l) RETURNING 1),
             e AS (DELETE FROM baton_ended WHERE id IN (SELECT id FROM baton_ended WHERE ended_at < @forget LIMIT @limit) AND (SELECT got FROM l) RETURNING 1)
        SELECT greatest((SELECT count(*) FROM d), (SELECT count(*) FROM e))
        """;

    public override string Name => "postgresql";

    protected override DbDataSource CreateSource(string connectionString, int maxConnections, int timeoutSeconds, out string location)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        var settings = builder.ConnectionStringBuilder;
        settings.Pooling = true;
        settings.IncludeErrorDetail = false;
        settings.MaxPoolSize = maxConnections;

        // The server gives up a statement or a lock wait too, so a statement the gateway abandoned does not hold rows.
        settings.Options = $"{settings.Options} -c statement_timeout={timeoutSeconds}s -c lock_timeout={timeoutSeconds}s".Trim();
        settings.MinPoolSize = Math.Min(settings.MinPoolSize, maxConnections);
        settings.Timeout = timeoutSeconds;
        settings.CommandTimeout = timeoutSeconds;

        // A timed-out statement breaks its connection at once: a hung server would not answer a cancel request either.
        settings.CancellationTimeout = -1;
        settings.ApplicationName ??= "baton";
        location = $"postgresql://{settings.Host}:{settings.Port}/{settings.Database ?? settings.Username}";
        return builder.Build();
    }

    protected override int MaxConnectionsOf(DbDataSource source) => new NpgsqlConnectionStringBuilder(source.ConnectionString).MaxPoolSize;

    // The server shut the connection down (restart, crash, an administrator), or the socket broke under it.
    protected override bool IsDroppedConnection(DbException exception) => exception switch
    {
        PostgresException e => e.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow,
        NpgsqlException e => e.InnerException is IOException or System.Net.Sockets.SocketException,
        _ => false,
    };

    protected override void ClearPool() => ((NpgsqlDataSource)Source).Clear();

    protected override void CreateSchema(DbConnection connection)
    {
        using var transaction = connection.BeginTransaction();
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandTimeout = TimeoutSeconds;

        // Gateways starting together take turns: the first makes the schema, the others find it made.
        command.CommandText = """
            SELECT pg_advisory_xact_lock(7305812361);
            CREATE TABLE IF NOT EXISTS baton_sessions (
                id          text   PRIMARY KEY,
                owner       text,
                epoch       bigint NOT NULL,
                version     bigint NOT NULL,
                state       bytea  NOT NULL,
                digest      text   NOT NULL,
                last_access bigint NOT NULL,
                expires_at  bigint NOT NULL,
                moving_until bigint NOT NULL DEFAULT 0,
                state_version bigint);
            CREATE INDEX IF NOT EXISTS baton_sessions_last_access ON baton_sessions (last_access);
            CREATE INDEX IF NOT EXISTS baton_sessions_expires_at ON baton_sessions (expires_at);
            CREATE TABLE IF NOT EXISTS baton_ended (id text PRIMARY KEY, ended_at bigint NOT NULL);
            CREATE INDEX IF NOT EXISTS baton_ended_ended_at ON baton_ended (ended_at);
            CREATE TABLE IF NOT EXISTS baton_schema (version integer NOT NULL);
            INSERT INTO baton_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT FROM baton_schema);
            UPDATE baton_schema SET version = @current WHERE version < @current;
            """;
        var current = command.CreateParameter();
        current.ParameterName = "@current";
        current.Value = CurrentSchema;
        command.Parameters.Add(current);
        command.ExecuteNonQuery();

        // A version 1 table gets the lease column; the ALTER (an exclusive lock) only when the column is missing.
        command.Parameters.Clear();
        command.CommandText = "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'baton_sessions' AND column_name = 'moving_until'";
        if (Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture) == 0)
        {
            command.CommandText = "ALTER TABLE baton_sessions ADD COLUMN moving_until bigint NOT NULL DEFAULT 0";
            command.ExecuteNonQuery();
        }

        // A version 2 table gets the state's version (null in every row: no row is rewritten) and the links table, whose
        // rows go with their session (ON DELETE CASCADE: an end or a purge drops them).
        command.CommandText = "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'baton_sessions' AND column_name = 'state_version'";
        if (Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture) == 0)
        {
            command.CommandText = "ALTER TABLE baton_sessions ADD COLUMN state_version bigint";
            command.ExecuteNonQuery();
        }

        command.CommandText = """
            CREATE TABLE IF NOT EXISTS baton_session_links (
                id      text   NOT NULL REFERENCES baton_sessions (id) ON DELETE CASCADE,
                version bigint NOT NULL,
                base    bigint NOT NULL,
                delta   bytea  NOT NULL,
                digest  text   NOT NULL,
                PRIMARY KEY (id, version))
            """;
        command.ExecuteNonQuery();
        transaction.Commit();
    }

    protected override int Add(DbBatch batch, JournalCommand command)
    {
        switch (command)
        {
            case JournalCommand.Checkpoint { Record.DeltaBase: not null } c:
                Statement(batch, Delta, DeltaParameters(c.Record));
                Statement(batch, DeltaRefused, ("@id", c.Record.SessionId), ("@epoch", c.Record.Epoch), ("@version", c.Record.Version));
                Statement(batch, ChainLinks, ("@id", c.Record.SessionId));
                Statement(batch, ChainBytes, ("@id", c.Record.SessionId));
                return 4;
            case JournalCommand.Checkpoint c:
                Statement(batch, Checkpoint, RecordParameters(c.Record));
                Statement(batch, EpochNow, ("@id", c.Record.SessionId));
                Statement(batch, DropLinks, ("@id", c.Record.SessionId));
                return 3;
            case JournalCommand.Move m:
                Statement(batch, Move, MoveParameters(m));
                return 1;
            case JournalCommand.Claim c:
                Statement(batch, Claim, ClaimParameters(c));
                return 1;
            case JournalCommand.Release r:
                Statement(batch, Release, ("@id", r.SessionId), ("@epoch", r.Epoch));
                return 1;
            case JournalCommand.Touch t:
                Statement(batch, Touch, ("@id", t.SessionId), ("@access", t.LastAccess), ("@expires", t.ExpiresAt));
                return 1;
            case JournalCommand.End e:
                Statement(batch, End, ("@id", e.SessionId), ("@at", e.At));
                return 1;
            case JournalCommand.Purge p:
                Statement(batch, Purge, ("@now", p.Now), ("@limit", (long)JournalTier.PurgeChunk), ("@forget", p.Now - Retention));
                return 1;
            default:
                throw new ArgumentOutOfRangeException(nameof(command), command.GetType().Name, "Not a journal write.");
        }
    }

    protected override int Result(JournalCommand command, long?[] values) => command switch
    {
        JournalCommand.Checkpoint { Record.DeltaBase: not null } c
            => Chained(c, values[0] > 0 ? SaveOutcome.Stored : values[1] is { } refused ? (SaveOutcome)refused : SaveOutcome.Unapplicable, values[2], values[3]),
        JournalCommand.Checkpoint c => (int)(values[0] > 0 ? SaveOutcome.Stored
            : values[1] is not { } epoch || epoch == c.Record.Epoch ? SaveOutcome.Stale
            : epoch > c.Record.Epoch ? SaveOutcome.Fenced : SaveOutcome.Diverged),
        _ => base.Result(command, values),
    };
}

/// <summary>The journal on MySQL 8 or MariaDB (MySqlConnector). Ids compare byte for byte (<c>ascii_bin</c>): two ids differing in case are two sessions.</summary>
internal sealed class MySqlJournal(IOptions<BatonOptions> options, ILogger<MySqlJournal> logger) : ServerJournal(options, logger)
{
    // MySQL has no conditional upsert: every column is set to its new value only when the write is a later version of
    // the same or a later epoch, and to itself otherwise (then no row changes and ROW_COUNT() is 0). Columns are
    // assigned left to right, each seeing the ones before it: epoch and version, which the condition reads, go last.
    private const string Newer = "VALUES(version) > version AND VALUES(epoch) >= epoch";

    private const string Checkpoint = $"""
        INSERT INTO baton_sessions (id, owner, epoch, version, state, digest, last_access, expires_at, state_version)
        SELECT @id, @owner, @epoch, @version, @state, @digest, @access, @expires, @version FROM DUAL
        WHERE NOT EXISTS (SELECT 1 FROM baton_ended WHERE id = @id)
        ON DUPLICATE KEY UPDATE
            owner = IF({Newer}, IF(VALUES(epoch) > epoch OR owner IS NULL, VALUES(owner), owner), owner),
            state = IF({Newer}, VALUES(state), state),
            digest = IF({Newer}, VALUES(digest), digest),
            state_version = IF({Newer}, VALUES(version), state_version),
            last_access = IF({Newer}, GREATEST(last_access, VALUES(last_access)), last_access),
            expires_at = IF({Newer}, GREATEST(expires_at, VALUES(expires_at)), expires_at),
            epoch = IF({Newer}, VALUES(epoch), epoch),
            version = IF({Newer}, VALUES(version), version)
        """;

    // 0 stored, 1 stale, 2 fenced, 3 diverged, as on PostgreSQL.
    private const string CheckpointResult = """
        SELECT IF(ROW_COUNT() > 0, 0, COALESCE((SELECT CASE WHEN epoch > @epoch THEN 2 WHEN epoch < @epoch THEN 3 ELSE 1 END FROM baton_sessions WHERE id = @id), 1))
        """;

    // The links a whole state ended, as on PostgreSQL: those at or below the row's state version (the upsert holds the row).
    private const string DropLinks = "DELETE FROM baton_session_links WHERE id = @id AND version <= (SELECT state_version FROM baton_sessions WHERE id = @id)";

    // A delta's check-and-set, as on PostgreSQL: only the small columns change (assigned left to right, so the state's
    // version is taken before the version moves). The link is added only when the update changed the row.
    private const string Delta = """
        UPDATE baton_sessions SET owner = COALESCE(owner, @owner), state_version = COALESCE(state_version, version),
            last_access = GREATEST(last_access, @access), expires_at = GREATEST(expires_at, @expires), version = @version
        WHERE id = @id AND epoch = @epoch AND version >= @base AND version < @version
        """;

    private const string Link = """
        INSERT INTO baton_session_links (id, version, base, delta, digest) SELECT @id, @version, @base, @delta, @digest FROM DUAL WHERE ROW_COUNT() > 0
        ON DUPLICATE KEY UPDATE base = VALUES(base), delta = VALUES(delta), digest = VALUES(digest)
        """;

    // Stored when the link went in; otherwise what the row as it is makes the delta (no row: absent or ended).
    private static readonly string DeltaResult = $"""
        SELECT IF(ROW_COUNT() > 0, {(int)SaveOutcome.Stored}, COALESCE((SELECT CASE WHEN epoch > @epoch THEN {(int)SaveOutcome.Fenced}
            WHEN version >= @version THEN IF(epoch = @epoch, {(int)SaveOutcome.Stale}, {(int)SaveOutcome.Diverged})
            ELSE {(int)SaveOutcome.Unapplicable} END FROM baton_sessions WHERE id = @id), {(int)SaveOutcome.Unapplicable}))
        """;

    private const string Move = """
        INSERT INTO baton_sessions (id, owner, epoch, version, state, digest, last_access, expires_at)
        SELECT @id, @owner, @epoch, 0, '', @digest, @access, @expires FROM DUAL
        WHERE NOT EXISTS (SELECT 1 FROM baton_ended WHERE id = @id)
        ON DUPLICATE KEY UPDATE
            owner = IF(VALUES(epoch) >= epoch, VALUES(owner), owner),
            last_access = GREATEST(last_access, VALUES(last_access)), expires_at = GREATEST(expires_at, VALUES(expires_at)),
            epoch = GREATEST(epoch, VALUES(epoch))
        """;

    // A move's check-and-set, as on PostgreSQL: an UPDATE, whose condition is read once before any column changes,
    // then, for a session no row holds yet, an insert that does nothing when another gateway's got there first.
    private const string Claim = """
        UPDATE baton_sessions SET owner = @owner, last_access = GREATEST(last_access, @access), expires_at = GREATEST(expires_at, @expires),
            moving_until = @until, epoch = @epoch
        WHERE id = @id AND epoch < @epoch AND moving_until <= @now
        """;

    private const string ClaimNew = """
        INSERT INTO baton_sessions (id, owner, epoch, version, state, digest, last_access, expires_at, moving_until)
        SELECT @id, @owner, @epoch, 0, '', @digest, @access, @expires, @until FROM DUAL
        WHERE NOT EXISTS (SELECT 1 FROM baton_ended WHERE id = @id)
        ON DUPLICATE KEY UPDATE id = id
        """;

    private const string RowCount = "SELECT ROW_COUNT()";

    public override string Name => "mysql";

    protected override DbDataSource CreateSource(string connectionString, int maxConnections, int timeoutSeconds, out string location)
    {
        var settings = new MySqlConnectionStringBuilder(connectionString)
        {
            Pooling = true,
            MaximumPoolSize = (uint)maxConnections,
            ConnectionTimeout = (uint)timeoutSeconds,
            DefaultCommandTimeout = (uint)timeoutSeconds,
            CancellationTimeout = -1,

            // ROW_COUNT() counts rows changed, not rows found: a write that changed nothing is told apart.
            UseAffectedRows = true,
        };
        settings.MinimumPoolSize = Math.Min(settings.MinimumPoolSize, settings.MaximumPoolSize);
        if (string.IsNullOrEmpty(settings.ApplicationName))
        {
            settings.ApplicationName = "baton";
        }

        location = $"mysql://{settings.Server}:{settings.Port}/{settings.Database}";
        return new MySqlDataSource(settings.ConnectionString);
    }

    protected override int MaxConnectionsOf(DbDataSource source) => (int)new MySqlConnectionStringBuilder(source.ConnectionString).MaximumPoolSize;

    // The server went away under the connection (restart, a killed connection) or shut down; not a connect that failed
    // or timed out, which a second try would only repeat.
    protected override bool IsDroppedConnection(DbException exception)
        => exception is MySqlException { ErrorCode: MySqlErrorCode.UnableToConnectToHost or MySqlErrorCode.CommandTimeoutExpired } ? false
            : exception is MySqlException { ErrorCode: MySqlErrorCode.ServerShutdown or MySqlErrorCode.NormalShutdown or MySqlErrorCode.ShutdownComplete } || exception.InnerException is IOException or System.Net.Sockets.SocketException;

    protected override void ClearPool() => ((MySqlDataSource)Source).Clear();

    protected override void CreateSchema(DbConnection connection)
    {
        // MySQL commits each CREATE on its own: a named lock makes gateways starting together take turns.
        using var command = connection.CreateCommand();
        command.CommandTimeout = TimeoutSeconds;
        command.CommandText = "SELECT GET_LOCK('baton_schema', @wait)";
        var wait = command.CreateParameter();
        wait.ParameterName = "@wait";
        wait.Value = TimeoutSeconds;
        command.Parameters.Add(wait);
        if (Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture) != 1)
        {
            throw new TimeoutException("Another gateway held the journal's schema lock past Baton:Journal:CommandTimeout.");
        }

        command.Parameters.Clear();
        try
        {
            command.CommandText = """
                CREATE TABLE IF NOT EXISTS baton_sessions (
                    id          VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
                    owner       VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
                    epoch       BIGINT       NOT NULL,
                    version     BIGINT       NOT NULL,
                    state       LONGBLOB     NOT NULL,
                    digest      VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                    last_access BIGINT       NOT NULL,
                    expires_at  BIGINT       NOT NULL,
                    moving_until BIGINT      NOT NULL DEFAULT 0,
                    state_version BIGINT     NULL,
                    INDEX baton_sessions_last_access (last_access),
                    INDEX baton_sessions_expires_at (expires_at)
                ) ENGINE = InnoDB;
                CREATE TABLE IF NOT EXISTS baton_ended (
                    id       VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
                    ended_at BIGINT NOT NULL,
                    INDEX baton_ended_ended_at (ended_at)
                ) ENGINE = InnoDB;
                CREATE TABLE IF NOT EXISTS baton_schema (version INT NOT NULL) ENGINE = InnoDB;
                INSERT INTO baton_schema (version) SELECT 0 FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM baton_schema);
                """;
            command.ExecuteNonQuery();

            // MySQL 8 has no ADD COLUMN IF NOT EXISTS: a version 1 table gets the lease column here.
            command.CommandText = "SELECT count(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'baton_sessions' AND column_name = 'moving_until'";
            if (Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture) == 0)
            {
                command.CommandText = "ALTER TABLE baton_sessions ADD COLUMN moving_until BIGINT NOT NULL DEFAULT 0";
                command.ExecuteNonQuery();
            }

            // A version 2 table gets the state's version (null in every row: an instant ALTER, no row rewritten) and the
            // links table, whose rows go with their session (ON DELETE CASCADE: an end or a purge drops them).
            command.CommandText = "SELECT count(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'baton_sessions' AND column_name = 'state_version'";
            if (Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture) == 0)
            {
                command.CommandText = "ALTER TABLE baton_sessions ADD COLUMN state_version BIGINT NULL";
                command.ExecuteNonQuery();
            }

            command.CommandText = """
                CREATE TABLE IF NOT EXISTS baton_session_links (
                    id      VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                    version BIGINT   NOT NULL,
                    base    BIGINT   NOT NULL,
                    delta   LONGBLOB NOT NULL,
                    digest  VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
                    PRIMARY KEY (id, version),
                    CONSTRAINT baton_session_links_session FOREIGN KEY (id) REFERENCES baton_sessions (id) ON DELETE CASCADE
                ) ENGINE = InnoDB
                """;
            command.ExecuteNonQuery();

            command.CommandText = $"UPDATE baton_schema SET version = {CurrentSchema} WHERE version < {CurrentSchema}";
            command.ExecuteNonQuery();
        }
        finally
        {
            command.CommandText = "SELECT RELEASE_LOCK('baton_schema')";
            command.ExecuteScalar();
        }
    }

    // Every statement of a write answers a result, the last one too: a failing statement after the last result would
    // only surface when the reader is closed, where the driver logs it and goes on.
    protected override int Result(JournalCommand command, long?[] values) => command switch
    {
        JournalCommand.Purge => (int)Math.Max(values[1] ?? 0, values[2] ?? 0),
        JournalCommand.Claim => (values[0] ?? 0) + (values[1] ?? 0) > 0 ? 1 : 0,
        JournalCommand.Checkpoint { Record.DeltaBase: not null } c => Chained(c, (SaveOutcome)(values[0] ?? (int)SaveOutcome.Unapplicable), values[1], values[2]),
        _ => base.Result(command, values),
    };

    protected override int Add(DbBatch batch, JournalCommand command)
    {
        switch (command)
        {
            case JournalCommand.Checkpoint { Record.DeltaBase: not null } c:
                Statement(batch, Delta, DeltaParameters(c.Record));
                Statement(batch, Link, DeltaParameters(c.Record));
                Statement(batch, DeltaResult, ("@id", c.Record.SessionId), ("@epoch", c.Record.Epoch), ("@version", c.Record.Version));
                Statement(batch, ChainLinks, ("@id", c.Record.SessionId));
                Statement(batch, ChainBytes, ("@id", c.Record.SessionId));
                return 3;
            case JournalCommand.Checkpoint c:
                Statement(batch, Checkpoint, RecordParameters(c.Record));
                Statement(batch, CheckpointResult, ("@id", c.Record.SessionId), ("@epoch", c.Record.Epoch));
                Statement(batch, DropLinks, ("@id", c.Record.SessionId));
                Statement(batch, RowCount);
                return 2;
            case JournalCommand.Move m:
                Statement(batch, Move, MoveParameters(m));
                Statement(batch, RowCount);
                return 1;
            case JournalCommand.Claim c:
                Statement(batch, Claim, ClaimParameters(c));
                Statement(batch, RowCount);
                Statement(batch, ClaimNew, ClaimParameters(c));
                Statement(batch, RowCount);
                return 2;
            case JournalCommand.Release r:
                Statement(batch, "UPDATE baton_sessions SET moving_until = 0 WHERE id = @id AND epoch = @epoch", ("@id", r.SessionId), ("@epoch", r.Epoch));
                Statement(batch, RowCount);
                return 1;
            case JournalCommand.Touch t:
                Statement(batch, "UPDATE baton_sessions SET last_access = GREATEST(last_access, @access), expires_at = GREATEST(expires_at, @expires) WHERE id = @id", ("@id", t.SessionId), ("@access", t.LastAccess), ("@expires", t.ExpiresAt));
                Statement(batch, RowCount);
                return 1;
            case JournalCommand.End e:
                Statement(batch, "DELETE FROM baton_sessions WHERE id = @id", ("@id", e.SessionId));
                Statement(batch, RowCount);
                Statement(batch, "INSERT INTO baton_ended (id, ended_at) VALUES (@id, @at) ON DUPLICATE KEY UPDATE ended_at = VALUES(ended_at)", ("@id", e.SessionId), ("@at", e.At));
                Statement(batch, RowCount);
                return 2;
            case JournalCommand.Purge p:
                // One gateway purges at a time: the others find the named lock taken and delete nothing this turn.
                Statement(batch, "SELECT GET_LOCK('baton_purge', 0)");
                Statement(batch, "DELETE FROM baton_sessions WHERE expires_at < @now AND IS_USED_LOCK('baton_purge') = CONNECTION_ID() LIMIT @limit", ("@now", p.Now), ("@limit", (long)JournalTier.PurgeChunk));
                Statement(batch, RowCount);
                Statement(batch, "DELETE FROM baton_ended WHERE ended_at < @forget AND IS_USED_LOCK('baton_purge') = CONNECTION_ID() LIMIT @limit", ("@forget", p.Now - Retention), ("@limit", (long)JournalTier.PurgeChunk));
                Statement(batch, RowCount);
                Statement(batch, "SELECT RELEASE_LOCK('baton_purge')");
                return 4;
            default:
                throw new ArgumentOutOfRangeException(nameof(command), command.GetType().Name, "Not a journal write.");
        }
    }
}
