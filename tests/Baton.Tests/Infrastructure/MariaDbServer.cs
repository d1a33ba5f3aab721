using System.Diagnostics;
using Baton.LoadTest;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real MariaDB server on a free loopback port, over a data folder of its own that outlives a kill:
/// started again, it has every committed row. Database <c>baton</c>, user <c>baton</c>@<c>127.0.0.1</c>, no
/// password. Killed when disposed, and in any case when the test process exits.
/// </summary>
public sealed class MariaDbServer : IAsyncLifetime
{
    private static readonly TimeSpan EndTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Run by each start before it takes connections; each statement changes nothing the second time.</summary>
    private const string InitScript = """
        CREATE DATABASE IF NOT EXISTS baton;
        CREATE USER IF NOT EXISTS 'baton'@'127.0.0.1';
        GRANT ALL PRIVILEGES ON *.* TO 'baton'@'127.0.0.1';
        """;

    private ManagedProcess? _process;
    private string _folder = "";

    public int Port { get; private set; }

    /// <summary>The MySqlConnector connection string of database <c>baton</c>.</summary>
    public string ConnectionString => $"Server=127.0.0.1;Port={Port};User ID=baton;Database=baton";

    /// <summary>How long the last start took, until the server answered a query.</summary>
    public TimeSpan StartTime { get; private set; }

    /// <summary>How long <c>mariadb-install-db</c> took.</summary>
    public TimeSpan InitTime { get; private set; }

    public async Task InitializeAsync()
    {
        Port = ManagedProcess.FreePort();
        _folder = TestPaths.NewFolder("mariadb");
        var install = Stopwatch.StartNew();
        await TestServers.SetUpAsync(new ProcessStartInfo(
            TestServers.MariaDbProgram("mariadb-install-db"),
            ["--no-defaults", "--datadir=" + Path.Combine(_folder, "data"), "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve", .. TestServers.MariaDbOptions])
        {
            WorkingDirectory = _folder,
        });
        InitTime = install.Elapsed;

        await File.WriteAllTextAsync(Path.Combine(_folder, "init.sql"), InitScript);
        _process = TestServers.MariaDb("mariadb", Port, _folder, "baton", "baton");
        await StartAsync();
    }

    /// <summary>kill -9, and a wait until the process is gone: nothing listens on the port any more, and the data folder is left as a crash leaves it.</summary>
    public async Task KillAsync()
    {
        var tree = _process!.TreeIds();
        _process.Kill();
        await Eventually.TrueAsync(() => tree.All(ManagedProcess.HasEnded), EndTimeout, "the killed MariaDB server should be gone");
    }

    /// <summary>SIGSTOP: connections stay open, queries hang, new connections wait.</summary>
    public void Pause() => _process!.Pause();

    public void Resume() => _process!.Resume();

    /// <summary>MariaDB again on the same port over the same data folder, after <see cref="KillAsync"/>: crash recovery, then every committed row.</summary>
    public async Task StartAsync()
    {
        if (_process!.IsRunning)
        {
            throw new InvalidOperationException("MariaDB is already running.");
        }

        // The socket's lock file of a killed server: MariaDB takes it for a live one's when its process id has
        // been given to another process since.
        File.Delete(Path.Combine(_folder, "mysql.sock.lock"));
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

        await KillAsync();
        _process.Dispose();
        Directory.Delete(_folder, recursive: true);
    }
}
