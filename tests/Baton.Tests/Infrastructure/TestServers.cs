using System.Diagnostics;
using System.Globalization;
using Baton.LoadTest;
using MySqlConnector;
using Npgsql;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// Server processes of the tests (backends, gateways, redis-server, sentinels, PostgreSQL, MariaDB) are the
/// load-test tool's <see cref="ManagedProcess"/>: one way to find ports, start, wait for, signal and kill
/// them. Each logs to a file in its test folder.
/// </summary>
internal static class TestServers
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan SetUpTimeout = TimeSpan.FromSeconds(60);

    public static ManagedProcess Managed(string name, string role, int port, Func<ProcessStartInfo> start, Func<CancellationToken, Task<bool>> isReady)
        => new(name, role, port, Path.Combine(TestPaths.NewFolder("logs"), name + ".log"), start, isReady);

    public static Task StartAsync(ManagedProcess process) => process.StartAsync(StartTimeout, CancellationToken.None);

    /// <summary>A redis-server on the port, empty (a new folder for each start), optionally as a replica.</summary>
    public static ManagedProcess Redis(string name, int port, params string[] extra)
        => Managed(name, "redis", port, () =>
        {
            var start = new ProcessStartInfo("redis-server")
            {
                ArgumentList = { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", TestPaths.NewFolder("redis") },
            };
            foreach (var arg in extra)
            {
                start.ArgumentList.Add(arg);
            }

            return start;
        }, ct => ManagedProcess.AcceptsAsync(port, ct));

    /// <summary>
    /// A PostgreSQL server on the port, over the data folder <c>initdb</c> made (kept from one start to the
    /// next), its Unix socket in <paramref name="socketFolder"/>. Run as the <c>postgres</c> user when this
    /// process is root (PostgreSQL refuses to run as root), set by the process start itself rather than through
    /// runuser, so the process is the postmaster: the orphan reaper's kill -9 reaches it (a runuser parent
    /// would die alone and leave the postmaster running). Ready when it answers a query over TCP.
    /// </summary>
    public static ManagedProcess Postgres(string name, int port, string dataFolder, string socketFolder)
        => Managed(name, "postgres", port, () => AsPostgresUser(new ProcessStartInfo(PostgresProgram("postgres"))
        {
            // fsync off: tests kill processes, not the machine, and what a killed server wrote stays in the
            // kernel's page cache. Commits still wait for their WAL write (synchronous_commit stays on).
            ArgumentList = { "-D", dataFolder, "-k", socketFolder, "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-c", "fsync=off", "-c", "shared_buffers=16MB" },
            WorkingDirectory = socketFolder,
        }), ct => PostgresAnswersAsync($"Host=127.0.0.1;Port={port};Username=baton;Database=postgres", ct));

    /// <summary>Runs the process as the <c>postgres</c> user when this process is root.</summary>
    public static ProcessStartInfo AsPostgresUser(ProcessStartInfo start) => PostgresJournal.AsPostgresUser(start);

    /// <summary>One of PostgreSQL's programs (<c>initdb</c>, <c>postgres</c>), found as the load-test tool finds them.</summary>
    public static string PostgresProgram(string name) => PostgresJournal.Program(name);

    /// <summary>One of MariaDB's programs (<c>mariadb-install-db</c>, <c>mariadbd</c>): from PATH, else from /usr/sbin.</summary>
    public static string MariaDbProgram(string name) => Program(name, ["/usr/sbin", "/usr/bin"], "the mariadb-server package");

    private static string Program(string name, IEnumerable<string> elsewhere, string package)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(elsewhere)
            .Select(folder => Path.Combine(folder, name))
            .FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"{name} is not on PATH nor where its package puts it: install {package}.");

    /// <summary>
    /// A MariaDB server on the port, over the data folder <c>mariadb-install-db</c> made in
    /// <paramref name="folder"/> (kept from one start to the next), small and quick to start. Each start runs
    /// <c>init.sql</c> of the folder first, when there is one. Ready when it answers a query over TCP.
    /// </summary>
    public static ManagedProcess MariaDb(string name, int port, string folder, string user, string database)
        => Managed(name, "mariadb", port, () =>
        {
            var start = new ProcessStartInfo(MariaDbProgram("mariadbd"))
            {
                // --no-defaults first: no my.cnf of the machine applies.
                ArgumentList =
                {
                    "--no-defaults", "--datadir=" + Path.Combine(folder, "data"), "--socket=" + Path.Combine(folder, "mysql.sock"),
                    "--pid-file=" + Path.Combine(folder, "mariadbd.pid"), "--bind-address=127.0.0.1", "--port=" + port.ToString(CultureInfo.InvariantCulture),
                    "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=2",
                },
                WorkingDirectory = folder,
            };
            foreach (var option in MariaDbOptions)
            {
                start.ArgumentList.Add(option);
            }

            if (File.Exists(Path.Combine(folder, "init.sql")))
            {
                start.ArgumentList.Add("--init-file=" + Path.Combine(folder, "init.sql"));
            }

            return start;
        }, ct => MariaDbAnswersAsync($"Server=127.0.0.1;Port={port};User ID={user};Database={database}", ct));

    /// <summary>The options both <c>mariadb-install-db</c> and <c>mariadbd</c> take: small, no binary log, root's own when root.</summary>
    public static IReadOnlyList<string> MariaDbOptions { get; } =
    [
        "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=8M", "--skip-log-bin",
        .. Environment.IsPrivilegedProcess ? ["--user=root"] : Array.Empty<string>(),
    ];

    /// <summary>Whether the PostgreSQL server answers <c>SELECT 1</c> on a new connection (a readiness check).</summary>
    public static Task<bool> PostgresAnswersAsync(string connectionString, CancellationToken cancellationToken) => PostgresJournal.AnswersAsync(connectionString, cancellationToken);

    /// <summary>Whether the MariaDB server answers <c>SELECT 1</c> on a new connection (a readiness check).</summary>
    public static async Task<bool> MariaDbAnswersAsync(string connectionString, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new MySqlConnection(connectionString + ";Pooling=false;Connection Timeout=2;Default Command Timeout=2");
            await connection.OpenAsync(cancellationToken);
            await using var command = new MySqlCommand("SELECT 1", connection);
            return Convert.ToInt32(await command.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture) == 1;
        }
        catch (MySqlException) when (!cancellationToken.IsCancellationRequested)
        {
            // Not listening yet, or still starting.
            return false;
        }
    }

    /// <summary>
    /// Runs a command that prepares a server (initdb, mariadb-install-db, chown) or an app (a build, a package
    /// install) to its end; one that fails, or is still running after <paramref name="timeout"/> (a minute by
    /// default), fails the test with everything it wrote.
    /// </summary>
    public static async Task SetUpAsync(ProcessStartInfo start, TimeSpan? timeout = null)
    {
        var limit = timeout ?? SetUpTimeout;
        start.UseShellExecute = false;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start.");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var deadline = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{start.FileName} {string.Join(' ', start.ArgumentList)} did not end within {limit.TotalSeconds:0} s.");
        }

        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{start.FileName} {string.Join(' ', start.ArgumentList)} exited with {process.ExitCode}:{Environment.NewLine}{await output}{await errors}");
        }
    }

    /// <summary>One of this build's programs, run with <c>dotnet</c> from the test output folder.</summary>
    public static ProcessStartInfo Dotnet(string dll, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = AppContext.BaseDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }
}
