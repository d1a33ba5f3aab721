using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Baton.LoadTest;

/// <summary>
/// A PostgreSQL server of its own for a run, the journal several gateways share: <c>initdb</c> into a temporary
/// folder (user <c>baton</c>, trust on loopback), <c>postgres</c> on a free loopback port, database <c>baton</c>.
/// As root it runs as the <c>postgres</c> user (PostgreSQL refuses root), set on the process itself so that the
/// process is the postmaster and a kill reaches it. Stopped with a fast shutdown, and its folder removed, when disposed.
/// </summary>
internal sealed class PostgresJournal : IAsyncDisposable
{
    private static readonly TimeSpan SetUpTimeout = TimeSpan.FromSeconds(60);
    private readonly string _folder;

    private PostgresJournal(ManagedProcess process, string folder) => (Process, _folder) = (process, folder);

    public ManagedProcess Process { get; }

    /// <summary>The gateway's <c>Baton:Journal:ConnectionString</c>.</summary>
    public string ConnectionString => $"Host=127.0.0.1;Port={Process.Port};Username=baton;Database=baton";

    public static async Task<PostgresJournal> StartAsync(string logPath, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var folder = Directory.CreateTempSubdirectory("baton-postgres-").FullName;
        var data = Path.Combine(folder, "data");
        if (Environment.IsPrivilegedProcess)
        {
            await RunAsync(new ProcessStartInfo("chown", ["postgres:postgres", folder]));
        }

        await RunAsync(AsPostgresUser(new ProcessStartInfo(Program("initdb"), ["-D", data, "-A", "trust", "-U", "baton", "--no-sync", "-E", "UTF8", "--no-locale"]) { WorkingDirectory = folder }));
        var port = ManagedProcess.FreePort();

        // fsync off: a run kills processes, not the machine, and what a killed process wrote stays in the page cache.
        // Commits still wait for their WAL write (synchronous_commit stays on), as a gateway's acknowledgement does.
        var process = new ManagedProcess("postgres", "postgres", port, logPath, () => AsPostgresUser(new ProcessStartInfo(Program("postgres"),
            ["-D", data, "-k", folder, "-h", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-c", "fsync=off", "-c", "shared_buffers=32MB", "-c", "max_connections=200"])
        {
            WorkingDirectory = folder,
        }), ct => AnswersAsync($"Host=127.0.0.1;Port={port};Username=baton;Database=postgres", ct));
        var server = new PostgresJournal(process, folder);
        try
        {
            await process.StartAsync(timeout, cancellationToken);
            await using var connection = new NpgsqlConnection($"Host=127.0.0.1;Port={port};Username=baton;Database=postgres;Pooling=false");
            await connection.OpenAsync(cancellationToken);
            await using var create = new NpgsqlCommand("CREATE DATABASE baton", connection);
            await create.ExecuteNonQueryAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// One of PostgreSQL's programs: from PATH, else from the newest /usr/lib/postgresql/&lt;version&gt;/bin (where
    /// Debian installs them, off PATH).
    /// </summary>
    public static string Program(string name)
    {
        var installed = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql")
                .Select(folder => (Bin: Path.Combine(folder, "bin"), Version: Version.TryParse(Path.GetFileName(folder) + ".0", out var version) ? version : null))
                .Where(candidate => candidate.Version is not null)
                .OrderByDescending(candidate => candidate.Version)
                .Select(candidate => candidate.Bin)
            : [];
        return (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(installed)
            .Select(folder => Path.Combine(folder, name))
            .FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"{name} is not on PATH nor where its package puts it: install the postgresql package.");
    }

    public async ValueTask DisposeAsync()
    {
        if (Process.IsRunning)
        {
            try
            {
                // A fast shutdown: only a postmaster that shuts down removes its shared memory segment.
                await Process.TerminateAsync(TimeSpan.FromSeconds(10), "INT");
            }
            catch (OperationCanceledException)
            {
                // Killed instead.
            }
        }

        Process.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A file the server still held; the temporary folder is the system's to clean.
        }
    }

    /// <summary>Runs the process as the <c>postgres</c> user when this process is root (PostgreSQL refuses to run as root).</summary>
    public static ProcessStartInfo AsPostgresUser(ProcessStartInfo start)
    {
        if (Environment.IsPrivilegedProcess)
        {
            start.UserName = "postgres";
        }

        return start;
    }

    /// <summary>Whether the PostgreSQL server answers <c>SELECT 1</c> on a new connection (a readiness check).</summary>
    public static async Task<bool> AnswersAsync(string connectionString, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString + ";Pooling=false;Timeout=2;Command Timeout=2");
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand("SELECT 1", connection);
            return Equals(await command.ExecuteScalarAsync(cancellationToken), 1);
        }
        catch (NpgsqlException) when (!cancellationToken.IsCancellationRequested)
        {
            // Not listening yet, or "the database system is starting up".
            return false;
        }
    }

    private static async Task RunAsync(ProcessStartInfo start)
    {
        var output = new List<string>();
        var code = await ManagedProcess.RunAsync(start, SetUpTimeout, line => output.Add(line));
        if (code != 0)
        {
            throw new InvalidOperationException($"{start.FileName} {string.Join(' ', start.ArgumentList)} exited with {code}: {string.Join(Environment.NewLine, output)}");
        }
    }
}
