using System.Data.Common;
using Baton.LoadTest;
using Baton.Tests.Infrastructure;
using MySqlConnector;
using Npgsql;
using Xunit.Abstractions;

namespace Baton.Tests.Store;

/// <summary>
/// The real database servers the journal's providers are tested against do what the tests make them do:
/// a kill -9 leaves the port dead and the committed rows on disk, a start brings both back, a pause hangs
/// even a connection that was already open.
/// </summary>
[Trait("Category", "Functional")]
public sealed class DatabaseServerTests(ITestOutputHelper output)
{
    /// <summary>Far above a one-second command timeout and the drivers' cancellation grace, far below a hang.</summary>
    private static readonly TimeSpan TimeoutFailsWithin = TimeSpan.FromSeconds(15);

    [Fact]
    public Task Postgres_KilledAndStartedAgain_KeepsACommittedRow()
        => WithAsync(new PostgresServer(), async postgres =>
        {
            output.WriteLine($"PostgreSQL: initdb {postgres.InitTime.TotalSeconds:0.00} s, first start {postgres.StartTime.TotalSeconds:0.00} s");
            await ExecuteAsync(Postgres(postgres), "CREATE TABLE items (id int PRIMARY KEY, value text NOT NULL); INSERT INTO items VALUES (1, 'kept')");

            await postgres.KillAsync();
            Assert.False(await ManagedProcess.AcceptsAsync(postgres.Port, CancellationToken.None), "nothing should listen on the port of a killed server");

            await postgres.StartAsync();
            output.WriteLine($"PostgreSQL: start after kill -9 {postgres.StartTime.TotalSeconds:0.00} s");
            Assert.Equal("kept", await ScalarAsync(Postgres(postgres), "SELECT value FROM items WHERE id = 1"));
        });

    [Fact]
    public Task Postgres_Paused_TimesOutAQueryOnAnOpenConnection_AndAnswersOnceResumed()
        => WithAsync(new PostgresServer(), async postgres =>
        {
            await using var open = Postgres(postgres);
            await open.OpenAsync();

            postgres.Pause();
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => ScalarOnOpenAsync(open, "SELECT 1").WaitAsync(TimeoutFailsWithin));

            postgres.Resume();
            Assert.Equal(1, await ScalarAsync(Postgres(postgres), "SELECT 1"));
        });

    [Fact]
    public Task MariaDb_KilledAndStartedAgain_KeepsACommittedRow()
        => WithAsync(new MariaDbServer(), async mariadb =>
        {
            output.WriteLine($"MariaDB: mariadb-install-db {mariadb.InitTime.TotalSeconds:0.00} s, first start {mariadb.StartTime.TotalSeconds:0.00} s");
            await ExecuteAsync(MariaDb(mariadb), "CREATE TABLE items (id int PRIMARY KEY, value text NOT NULL) ENGINE=InnoDB; INSERT INTO items VALUES (1, 'kept')");

            await mariadb.KillAsync();
            Assert.False(await ManagedProcess.AcceptsAsync(mariadb.Port, CancellationToken.None), "nothing should listen on the port of a killed server");

            await mariadb.StartAsync();
            output.WriteLine($"MariaDB: start after kill -9 {mariadb.StartTime.TotalSeconds:0.00} s");
            Assert.Equal("kept", await ScalarAsync(MariaDb(mariadb), "SELECT value FROM items WHERE id = 1"));
        });

    [Fact]
    public Task MariaDb_Paused_TimesOutAQueryOnAnOpenConnection_AndAnswersOnceResumed()
        => WithAsync(new MariaDbServer(), async mariadb =>
        {
            await using var open = MariaDb(mariadb);
            await open.OpenAsync();

            mariadb.Pause();
            await Assert.ThrowsAnyAsync<MySqlException>(() => ScalarOnOpenAsync(open, "SELECT 1").WaitAsync(TimeoutFailsWithin));

            mariadb.Resume();
            Assert.Equal(1L, Convert.ToInt64(await ScalarAsync(MariaDb(mariadb), "SELECT 1"), System.Globalization.CultureInfo.InvariantCulture));
        });

    /// <summary>
    /// Connections of their own, never pooled (a pooled one could be a connection the kill broke), with a
    /// command timeout of one second. A timed-out command is cancelled over a new connection, which a paused
    /// server does not answer either: the connect timeout bounds that wait twice (Npgsql's default of 15 s
    /// made a one-second timeout fail after 31 s; with 2 s it fails after 5 s).
    /// </summary>
    private static NpgsqlConnection Postgres(PostgresServer server) => new(server.ConnectionString + ";Pooling=false;Command Timeout=1;Timeout=2");

    private static MySqlConnection MariaDb(MariaDbServer server) => new(server.ConnectionString + ";Pooling=false;Default Command Timeout=1;Connection Timeout=2");

    private static async Task WithAsync<T>(T server, Func<T, Task> test)
        where T : IAsyncLifetime
    {
        try
        {
            await server.InitializeAsync();
            await test(server);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }

    private static async Task ExecuteAsync(DbConnection connection, string sql)
    {
        await using (connection)
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = sql;
            await command.ExecuteNonQueryAsync();
        }
    }

    private static async Task<object?> ScalarAsync(DbConnection connection, string sql)
    {
        await using (connection)
        {
            await connection.OpenAsync();
            return await ScalarOnOpenAsync(connection, sql);
        }
    }

    private static async Task<object?> ScalarOnOpenAsync(DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync();
    }
}
