using System.Diagnostics;
using Baton.LoadTest;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real database server on a free loopback port, over a data folder of its own that outlives a kill: started
/// again, it has every committed row. Killed for real, paused for real (the whole process tree), and in any case
/// killed when the test process exits.
/// </summary>
internal abstract class DatabaseServer : IAsyncLifetime
{
    protected static readonly TimeSpan EndTimeout = TimeSpan.FromSeconds(10);

    private readonly string _name;
    private ManagedProcess? _process;

    protected DatabaseServer(string name, string folderPrefix)
    {
        _name = name;
        Port = ManagedProcess.FreePort();
        Folder = TestPaths.NewFolder(folderPrefix);
    }

    public int Port { get; }

    /// <summary>The driver's connection string of database <c>baton</c>, user <c>baton</c>, no password.</summary>
    public abstract string ConnectionString { get; }

    /// <summary>How long the last start took, until the server answered a query.</summary>
    public TimeSpan StartTime { get; private set; }

    /// <summary>How long making the data folder took.</summary>
    public TimeSpan InitTime { get; private set; }

    protected string Folder { get; }

    protected ManagedProcess Process => _process!;

    /// <summary>
    /// The lock files a killed server leaves: the server takes them for a live one's when their process id has been
    /// given to another process since.
    /// </summary>
    protected abstract IEnumerable<string> LockFiles { get; }

    public async Task InitializeAsync()
    {
        var init = Stopwatch.StartNew();
        await CreateDataAsync();
        InitTime = init.Elapsed;
        _process = CreateProcess();
        await StartAsync();
        await AfterFirstStartAsync();
    }

    /// <summary>
    /// kill -9 of the server and of every process below it, and a wait until all of them are gone: nothing listens
    /// on the port any more, and the data folder is left as a crash leaves it.
    /// </summary>
    public async Task KillAsync()
    {
        var tree = Process.TreeIds();
        Process.Kill();
        await Eventually.TrueAsync(() => tree.All(ManagedProcess.HasEnded), EndTimeout, $"every process of the killed {_name} server should be gone");
    }

    /// <summary>SIGSTOP of the server and of every process below it: connections stay open, queries hang, new connections wait.</summary>
    public void Pause() => Process.PauseTree();

    public void Resume() => Process.ResumeTree();

    /// <summary>The server again on the same port over the same data folder, after <see cref="KillAsync"/>: crash recovery, then every committed row.</summary>
    public async Task StartAsync()
    {
        if (Process.IsRunning)
        {
            throw new InvalidOperationException($"{_name} is already running.");
        }

        foreach (var file in LockFiles)
        {
            File.Delete(file);
        }

        var started = Stopwatch.StartNew();
        await TestServers.StartAsync(Process);
        StartTime = started.Elapsed;
    }

    public async Task DisposeAsync()
    {
        if (_process is null)
        {
            return;
        }

        if (_process.IsRunning)
        {
            _process.ResumeTree();
            await StopAsync();
        }

        await KillAsync();
        _process.Dispose();
        Directory.Delete(Folder, recursive: true);
    }

    protected abstract Task CreateDataAsync();

    protected abstract ManagedProcess CreateProcess();

    protected virtual Task AfterFirstStartAsync() => Task.CompletedTask;

    /// <summary>How the server is stopped when the test is done (it is killed after, whatever is left of it).</summary>
    protected virtual Task StopAsync() => Task.CompletedTask;
}
