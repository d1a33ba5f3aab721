using System.Diagnostics;
using Baton.LoadTest;
using Npgsql;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real PostgreSQL server on a free loopback port, over a data folder of its own that outlives a kill:
/// started again, it has every committed row. Database <c>baton</c>, user <c>baton</c>, no password. Shut
/// down when disposed, and killed in any case when the test process exits.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private static readonly TimeSpan EndTimeout = TimeSpan.FromSeconds(10);

    private ManagedProcess? _process;
    private string _folder = "";

    public int Port { get; private set; }

    /// <summary>The Npgsql connection string of database <c>baton</c>.</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={Port};Username=baton;Database=baton";

    /// <summary>How long the last start took, until the server answered a query.</summary>
    public TimeSpan StartTime { get; private set; }

    /// <summary>How long <c>initdb</c> took.</summary>
    public TimeSpan InitTime { get; private set; }

    private string DataFolder => Path.Combine(_folder, "data");

    public async Task InitializeAsync()
    {
        Port = ManagedProcess.FreePort();
        _folder = TestPaths.NewFolder("postgres");
        if (Environment.IsPrivilegedProcess)
        {
            // PostgreSQL refuses to run as root; it runs as the postgres user, who must own the folder it writes.
            await TestServers.SetUpAsync(new ProcessStartInfo("chown", ["postgres:postgres", _folder]));
        }

        var initdb = Stopwatch.StartNew();
        await TestServers.SetUpAsync(TestServers.AsPostgresUser(new ProcessStartInfo(TestServers.PostgresProgram("initdb"), ["-D", DataFolder, "-A", "trust", "-U", "baton", "--no-sync", "-E", "UTF8", "--no-locale"])
        {
            WorkingDirectory = _folder,
        }));
        InitTime = initdb.Elapsed;

        _process = TestServers.Postgres("postgres", Port, DataFolder, _folder);
        await StartAsync();
        await using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={Port};Username=baton;Database=postgres;Pooling=false");
        await connection.OpenAsync();
        await using var create = new NpgsqlCommand("CREATE DATABASE baton", connection);
        await create.ExecuteNonQueryAsync();
    }

    /// <summary>
    /// kill -9 of the postmaster and of every backend and helper process below it, and a wait until all of
    /// them are gone: nothing listens on the port any more, and the data folder is left as a crash leaves it.
    /// </summary>
    public async Task KillAsync()
    {
        var tree = _process!.TreeIds();
        _process.Kill();
        await Eventually.TrueAsync(() => tree.All(ManagedProcess.HasEnded), EndTimeout, "every process of the killed PostgreSQL server should be gone");
    }

    /// <summary>SIGSTOP of the postmaster and of every backend: connections stay open, queries hang, new connections wait.</summary>
    public void Pause() => _process!.PauseTree();

    public void Resume() => _process!.ResumeTree();

    /// <summary>PostgreSQL again on the same port over the same data folder, after <see cref="KillAsync"/>: crash recovery, then every committed row.</summary>
    public async Task StartAsync()
    {
        if (_process!.IsRunning)
        {
            throw new InvalidOperationException("PostgreSQL is already running.");
        }

        // The lock files of a killed server: PostgreSQL takes them for a live one's when their process id has
        // been given to another process since. None of this server's processes is left (see KillAsync).
        File.Delete(Path.Combine(DataFolder, "postmaster.pid"));
        File.Delete(Path.Combine(_folder, $".s.PGSQL.{Port}.lock"));
        var started = Stopwatch.StartNew();
        await TestServers.StartAsync(_process);
        StartTime = started.Elapsed;
    }

    public async Task DisposeAsync()
    {
        if (_process is null)
        {
            return;
        }

        // A fast shutdown, not a kill: only a postmaster that shuts down removes its shared memory segment, so
        // every killed server would leave one behind. Resumed first, in case it is paused.
        if (_process.IsRunning)
        {
            _process.ResumeTree();
            try
            {
                await _process.TerminateAsync(EndTimeout, "INT");
            }
            catch (OperationCanceledException)
            {
                // Killed instead.
            }
        }

        await KillAsync();
        _process.Dispose();
        Directory.Delete(_folder, recursive: true);
    }
}
