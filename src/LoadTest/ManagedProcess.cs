using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Baton.LoadTest;

/// <summary>
/// A server process (redis-server, a backend, the gateway, a sentinel, a browser), the one way the load-test
/// tool and the test suite run one: started on a port handed out here, waited for until ready, killed for
/// real (SIGKILL), paused and resumed (SIGSTOP/SIGCONT), stopped gracefully (SIGTERM) and started again on
/// the same port. Its output goes to a log file; nothing it started outlives this process, not even when this
/// process is killed (<see cref="OrphanReaper"/>). It keeps the CPU
/// time and peak memory of every one of its incarnations, read from /proc.
/// </summary>
internal sealed class ManagedProcess : IDisposable
{
    private static readonly List<ManagedProcess> All = [];
    private static readonly HashSet<int> HandedOut = [];
    private readonly Func<ProcessStartInfo> _startInfo;
    private readonly Func<CancellationToken, Task<bool>> _isReady;
    private readonly string _logPath;
    private readonly Action<string>? _output;
    private Process? _process;
    private StreamWriter? _log;
    private double _cpuSecondsOfEnded;
    private double _cpuSecondsOfCurrent;

    static ManagedProcess()
    {
        // Whatever happens to this tool, nothing it started outlives it.
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            lock (All)
            {
                foreach (var process in All)
                {
                    process.Kill();
                }
            }
        };
    }

    /// <param name="output">Also receives each line the process writes (stdout and stderr), when given.</param>
    public ManagedProcess(string name, string role, int port, string logPath, Func<ProcessStartInfo> startInfo, Func<CancellationToken, Task<bool>> isReady, Action<string>? output = null)
    {
        (Name, Role, Port, _logPath, _startInfo, _isReady, _output) = (name, role, port, logPath, startInfo, isReady, output);
        lock (All)
        {
            All.Add(this);
        }
    }

    public string Name { get; }

    /// <summary><c>gateway</c>, <c>backend</c> or <c>redis</c>.</summary>
    public string Role { get; }

    public int Port { get; }

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>CPU seconds (user + system) used by every incarnation so far.</summary>
    public double CpuSeconds
    {
        get
        {
            Sample();
            return _cpuSecondsOfEnded + _cpuSecondsOfCurrent;
        }
    }

    /// <summary>The largest resident set any incarnation reached (VmHWM), in bytes.</summary>
    public long PeakMemoryBytes { get; private set; }

    public async Task StartAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = _startInfo();
        start.UseShellExecute = false;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        _log = new StreamWriter(_logPath, append: true) { AutoFlush = true };
        var log = TextWriter.Synchronized(_log);
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => WriteLine(log, e.Data, _output);
        process.ErrorDataReceived += (_, e) => WriteLine(log, e.Data, _output);
        if (!process.Start())
        {
            throw new InvalidOperationException($"{Name} did not start ({start.FileName}).");
        }

        OrphanReaper.Started(process.Id);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        _cpuSecondsOfCurrent = 0;

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{Name} exited with code {process.ExitCode} while starting; see {_logPath}.");
            }

            try
            {
                if (await _isReady(deadline.Token))
                {
                    return;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(50), deadline.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"{Name} was not ready within {timeout.TotalSeconds:0} s; see {_logPath}.");
            }
        }
    }

    /// <summary>SIGSTOP: the process keeps its sockets (connections are still accepted) but answers nothing.</summary>
    public void Pause() => Signal("STOP");

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume() => Signal("CONT");

    /// <summary>
    /// SIGTERM (or the server's own stop signal, such as PostgreSQL's INT), then waits for the process to end:
    /// its exit code. A process still running at the timeout is killed, and the wait's
    /// <see cref="OperationCanceledException"/> thrown.
    /// </summary>
    public async Task<int> TerminateAsync(TimeSpan timeout, string signal = "TERM")
    {
        var process = _process ?? throw new InvalidOperationException($"{Name} is not running.");
        Signal(signal);
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
            return process.ExitCode;
        }
        finally
        {
            Kill();
        }
    }

    /// <summary>
    /// SIGSTOP of the process and of every process below it: a server that works in child processes
    /// (PostgreSQL's backends) hangs as a whole, its open connections too. Each level is stopped before its
    /// children are listed, so none is started meanwhile.
    /// </summary>
    public void PauseTree() => SignalTree("STOP");

    /// <summary>SIGCONT of the process and of every process below it, after <see cref="PauseTree"/>.</summary>
    public void ResumeTree() => SignalTree("CONT");

    /// <summary>The ids of the process and of every process below it, parents first (from /proc); empty when it is not running.</summary>
    public IReadOnlyList<int> TreeIds()
    {
        if (_process is not { HasExited: false } process)
        {
            return [];
        }

        var ids = new List<int>();
        for (var level = new List<int> { process.Id }; level.Count > 0; level = ChildrenOf(level))
        {
            ids.AddRange(level);
        }

        return ids;
    }

    /// <summary>Whether the process with this id has ended (gone, or a zombie nobody has reaped yet).</summary>
    public static bool HasEnded(int processId)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{processId}/stat");
            return stat[stat.LastIndexOf(')') + 2] == 'Z';
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or IndexOutOfRangeException)
        {
            return true;
        }
    }

    private void SignalTree(string signal)
    {
        if (_process is not { HasExited: false } process)
        {
            throw new InvalidOperationException($"kill -{signal} of {Name} failed: it is not running.");
        }

        for (var level = new List<int> { process.Id }; level.Count > 0; level = ChildrenOf(level))
        {
            // A child that ended meanwhile fails its part of the kill; the others are still signalled.
            using var kill = Process.Start("kill", ["-" + signal, .. level.Select(id => id.ToString(CultureInfo.InvariantCulture))]);
            kill.WaitForExit();
        }
    }

    /// <summary>The processes whose parent is one of <paramref name="parents"/>, from each process's /proc/&lt;id&gt;/stat.</summary>
    private static List<int> ChildrenOf(List<int> parents)
    {
        var children = new List<int>();
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                continue;
            }

            try
            {
                var stat = File.ReadAllText(Path.Combine(folder, "stat"));

                // After the name: state, then the parent's id.
                var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
                if (parents.Contains(parent))
                {
                    children.Add(id);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
                // The process ended while the list was read.
            }
        }

        return children;
    }

    /// <summary>Sends a signal by name (STOP, CONT, TERM...) with kill(1); false when the process is not running.</summary>
    public bool TrySignal(string signal)
    {
        if (_process is not { HasExited: false } process)
        {
            return false;
        }

        using var kill = Process.Start("kill", ["-" + signal, process.Id.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        return kill.ExitCode == 0;
    }

    private void Signal(string signal)
    {
        if (!TrySignal(signal))
        {
            throw new InvalidOperationException($"kill -{signal} of {Name} failed: it is not running.");
        }
    }

    /// <summary>kill -9: the process dies at once, with everything in its memory.</summary>
    public void Kill()
    {
        var process = _process;
        if (process is null)
        {
            return;
        }

        Sample();
        _cpuSecondsOfEnded += _cpuSecondsOfCurrent;
        _cpuSecondsOfCurrent = 0;
        _process = null;
        try
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        OrphanReaper.Ended(process.Id);

        process.Dispose();
        _log?.Dispose();
        _log = null;
    }

    /// <summary>Reads the current incarnation's CPU time and peak memory from /proc (Linux).</summary>
    public void Sample()
    {
        var process = _process;
        if (process is null)
        {
            return;
        }

        try
        {
            var stat = File.ReadAllText($"/proc/{process.Id}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');

            // Fields 14 and 15 of stat (utime, stime) in clock ticks of 1/100 s; after the name, they are the 12th and 13th.
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            _cpuSecondsOfCurrent = ticks / 100.0;
            foreach (var line in File.ReadLines($"/proc/{process.Id}/status"))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    var kib = long.Parse(line["VmHWM:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
                    PeakMemoryBytes = Math.Max(PeakMemoryBytes, kib * 1024);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException or InvalidOperationException)
        {
            // The process ended between two reads, or /proc is not there: keep what was read before.
        }
    }

    public void Dispose()
    {
        Kill();
        lock (All)
        {
            All.Remove(this);
        }
    }

    /// <summary>
    /// A loopback port for a server started later. Chosen below the kernel's ephemeral range (so servers
    /// binding port 0 meanwhile cannot take it), free now, and never handed out twice by this process.
    /// </summary>
    public static int FreePort()
    {
        while (true)
        {
            var port = Random.Shared.Next(20_000, 32_000);
            lock (HandedOut)
            {
                if (!HandedOut.Add(port))
                {
                    continue;
                }
            }

            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
            }
        }
    }

    /// <summary>Whether the URL answers 2xx (a readiness check).</summary>
    public static async Task<bool> HttpReadyAsync(Uri uri, CancellationToken cancellationToken)
    {
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(2) };
        try
        {
            using var response = await client.GetAsync(uri, cancellationToken);
            return response.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>
    /// Runs a command to its end (a browser dumping a page, a health check): its exit code, each line it
    /// writes to stdout to <paramref name="output"/> (stderr is drained). Killed, and a
    /// <see cref="TimeoutException"/>, past the timeout.
    /// </summary>
    public static async Task<int> RunAsync(ProcessStartInfo start, TimeSpan timeout, Action<string>? output = null)
    {
        start.UseShellExecute = false;
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Forward(e.Data, output);
        process.ErrorDataReceived += (_, _) => { };
        if (!process.Start())
        {
            throw new InvalidOperationException($"{start.FileName} did not start.");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{start.FileName} did not end within {timeout.TotalSeconds:0} s.");
        }

        // The output handlers have seen every line once the exit is observed without a timeout.
        process.WaitForExit();
        return process.ExitCode;

        static void Forward(string? line, Action<string>? output)
        {
            if (line is not null)
            {
                output?.Invoke(line);
            }
        }
    }

    /// <summary>Whether something accepts TCP connections on the loopback port.</summary>
    public static async Task<bool> AcceptsAsync(int port, CancellationToken cancellationToken)
    {
        try
        {
            using var socket = new TcpClient();
            await socket.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static void WriteLine(TextWriter log, string? line, Action<string>? output)
    {
        if (line is null)
        {
            return;
        }

        output?.Invoke(line);
        try
        {
            log.WriteLine(line);
        }
        catch (ObjectDisposedException)
        {
            // The process was killed while it still had output in flight.
        }
    }
}
