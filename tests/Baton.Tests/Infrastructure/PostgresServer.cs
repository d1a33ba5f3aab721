using System.Diagnostics;
using Baton.LoadTest;
using Npgsql;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real PostgreSQL server (see <see cref="DatabaseServer"/>): database <c>baton</c>, user <c>baton</c>, no password;
/// shut down when disposed.
/// </summary>
internal sealed class PostgresServer() : DatabaseServer("PostgreSQL", "postgres")
{
    /// <summary>The Npgsql connection string of database <c>baton</c>.</summary>
    public override string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=baton;Database=baton";

    private string DataFolder => Path.Combine(Folder, "data");

    protected override IEnumerable<string> LockFiles => [Path.Combine(DataFolder, "postmaster.pid"), Path.Combine(Folder, $".s.PGSQL.{Port}.lock")];

    protected override async Task CreateDataAsync()
    {
        if (Environment.IsPrivilegedProcess)
        {
            // PostgreSQL refuses to run as root; it runs as the postgres user, who must own the folder it writes.
            await TestServers.SetUpAsync(new ProcessStartInfo("chown", ["postgres:postgres", Folder]));
        }

        await TestServers.SetUpAsync(TestServers.AsPostgresUser(new ProcessStartInfo(TestServers.PostgresProgram("initdb"), ["-D", DataFolder, "-A", "trust", "-U", "baton", "--no-sync", "-E", "UTF8", "--no-locale"])
        {
            WorkingDirectory = Folder,
        }));
    }

    protected override ManagedProcess CreateProcess() => TestServers.Postgres("postgres", Port, DataFolder, Folder);

    protected override async Task AfterFirstStartAsync()
    {
        await using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={Port};Username=baton;Database=postgres;Pooling=false");
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand("CREATE DATABASE baton", connection);
        await create.ExecuteNonQueryAsync();
    }

    // A fast shutdown, not a kill: only a postmaster that shuts down removes its shared memory segment, so every
    // killed server would leave one behind.
    protected override async Task StopAsync()
    {
        try
        {
            await Process.TerminateAsync(EndTimeout, "INT");
        }
        catch (OperationCanceledException)
        {
            // Killed instead.
        }
    }
}
