using System.Data.Common;
using MySqlConnector;
using Npgsql;

namespace Baton.Tests.Infrastructure;

/// <summary>The journal providers a store test runs against (one test body, the provider as data).</summary>
public enum JournalKind
{
    Sqlite,
    PostgreSql,
    MySql,
}

/// <summary>
/// One test's journal: the gateway's own SQLite file, or a real PostgreSQL or MariaDB server of its own started
/// for the test. Gives the gateway settings that select it, reads what the gateway stored in it, and takes it away:
/// a server killed (-9) or hung (SIGSTOP), a SQLite file locked by another writer (the gateway's commits wait out
/// <c>Baton:Journal:LockTimeout</c>, as on a stuck disk).
/// </summary>
internal sealed class TestJournal : IAsyncDisposable
{
    private readonly PostgresServer? _postgres;
    private readonly MariaDbServer? _mariadb;

    private TestJournal(JournalKind kind, PostgresServer? postgres, MariaDbServer? mariadb)
    {
        Kind = kind;
        _postgres = postgres;
        _mariadb = mariadb;
    }

    public JournalKind Kind { get; }

    /// <summary>The server journal's connection string.</summary>
    public string ConnectionString => Kind switch
    {
        JournalKind.PostgreSql => _postgres!.ConnectionString,
        JournalKind.MySql => _mariadb!.ConnectionString,
        _ => throw new InvalidOperationException("A SQLite journal has no connection string."),
    };

    /// <summary>The gateway settings that select this journal, with short timeouts so an outage shows quickly.</summary>
    public string[] GatewayArgs => Kind switch
    {
        JournalKind.PostgreSql => ["--Baton:Journal:Provider=PostgreSql", $"--Baton:Journal:ConnectionString={_postgres!.ConnectionString}", "--Baton:Journal:CommandTimeout=00:00:02"],
        JournalKind.MySql => ["--Baton:Journal:Provider=MySql", $"--Baton:Journal:ConnectionString={_mariadb!.ConnectionString}", "--Baton:Journal:CommandTimeout=00:00:02"],
        _ => ["--Baton:Journal:LockTimeout=00:00:01"],
    };

    public static async Task<TestJournal> StartAsync(JournalKind kind)
    {
        switch (kind)
        {
            case JournalKind.PostgreSql:
                var postgres = new PostgresServer();
                await postgres.InitializeAsync();
                return new TestJournal(kind, postgres, null);
            case JournalKind.MySql:
                var mariadb = new MariaDbServer();
                await mariadb.InitializeAsync();
                return new TestJournal(kind, null, mariadb);
            default:
                return new TestJournal(kind, null, null);
        }
    }

    /// <summary>The session as the journal holds it; <paramref name="sqlitePath"/> is the gateway's file (SQLite only).</summary>
    public async Task<StoredSession?> ReadAsync(string sessionId, string sqlitePath)
    {
        if (Kind == JournalKind.Sqlite)
        {
            return StoredSessions.FromJournal(sqlitePath, sessionId);
        }

        await using var connection = Open();
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead);
        command.Transaction = transaction;
        command.CommandText = "SELECT version, state, owner, last_access, epoch, coalesce(state_version, version) FROM baton_sessions WHERE id = @id";
        var id = command.CreateParameter();
        id.ParameterName = "@id";
        id.Value = sessionId;
        command.Parameters.Add(id);
        StoredSession stored;
        long stateVersion;
        await using (var reader = await command.ExecuteReaderAsync())
        {
            if (!await reader.ReadAsync())
            {
                return null;
            }

            stored = new StoredSession(reader.GetInt64(0), (byte[])reader.GetValue(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4));
            stateVersion = reader.GetInt64(5);
        }

        // The deltas stored after the whole state, applied in order.
        command.CommandText = $"SELECT delta FROM baton_session_links WHERE id = @id AND version > {stateVersion} ORDER BY version";
        var state = stored.State;
        await using (var links = await command.ExecuteReaderAsync())
        {
            while (await links.ReadAsync())
            {
                Assert.True(Baton.Protocol.KeyedState.TryApply(state, (byte[])links.GetValue(0), out state), "a stored delta should apply");
            }
        }

        return stored with { State = state };
    }

    /// <summary>How many deltas the journal keeps for the session (its links table's rows); <paramref name="sqlitePath"/> as for <see cref="ReadAsync"/>.</summary>
    public async Task<long> LinkCountAsync(string sessionId, string sqlitePath)
    {
        await using var connection = Kind == JournalKind.Sqlite
            ? new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={sqlitePath};Mode=ReadOnly;Pooling=false")
            : Open();
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM {(Kind == JournalKind.Sqlite ? "session_links" : "baton_session_links")} WHERE id = @id";
        var id = command.CreateParameter();
        id.ParameterName = "@id";
        id.Value = sessionId;
        command.Parameters.Add(id);
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Runs one statement on the journal's database (SQLite: the file at <paramref name="sqlitePath"/>).</summary>
    public async Task ExecuteAsync(string sql, string sqlitePath)
    {
        if (Kind != JournalKind.Sqlite)
        {
            await ExecuteAsync(sql);
            return;
        }

        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={sqlitePath};Pooling=false");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Runs one statement on the server journal's database.</summary>
    public async Task ExecuteAsync(string sql)
    {
        await using var connection = Open();
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// Takes the journal away until the returned handle is disposed: the server killed -9 (then started again on its
    /// data) or, with <paramref name="hang"/>, stopped with SIGSTOP (then continued); the SQLite file always hangs.
    /// </summary>
    public async Task<IAsyncDisposable> OutageAsync(string sqlitePath, bool hang)
    {
        switch (Kind)
        {
            case JournalKind.Sqlite:
                var held = new JournalLock(sqlitePath);
                return new Outage(() =>
                {
                    held.Dispose();
                    return Task.CompletedTask;
                });
            case JournalKind.PostgreSql when hang:
                _postgres!.Pause();
                return new Outage(() =>
                {
                    _postgres.Resume();
                    return Task.CompletedTask;
                });
            case JournalKind.PostgreSql:
                await _postgres!.KillAsync();
                return new Outage(_postgres.StartAsync);
            case JournalKind.MySql when hang:
                _mariadb!.Pause();
                return new Outage(() =>
                {
                    _mariadb.Resume();
                    return Task.CompletedTask;
                });
            default:
                await _mariadb!.KillAsync();
                return new Outage(_mariadb.StartAsync);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }

        if (_mariadb is not null)
        {
            await _mariadb.DisposeAsync();
        }
    }

    // Unpooled: a pooled connection would not outlive a server the test kills.
    private DbConnection Open() => Kind == JournalKind.PostgreSql
        ? new NpgsqlConnection(_postgres!.ConnectionString + ";Pooling=false")
        : new MySqlConnection(_mariadb!.ConnectionString + ";Pooling=false");

    private sealed class Outage(Func<Task> end) : IAsyncDisposable
    {
        private bool _ended;

        public async ValueTask DisposeAsync()
        {
            if (!_ended)
            {
                _ended = true;
                await end();
            }
        }
    }
}
