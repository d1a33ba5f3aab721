using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Baton.LoadTest;

/// <summary>
/// A server process the tool runs (redis-server, a backend, the gateway): started, waited for, killed for
/// real (SIGKILL) and started again on the same port. It keeps the CPU time and peak memory of every one of
/// its incarnations, read from /proc.
/// </summary>
internal sealed class ManagedProcess : IDisposable
{
    private static readonly List<ManagedProcess> All = [];
    private readonly Func<ProcessStartInfo> _startInfo;
    private readonly Func<CancellationToken, Task<bool>> _isReady;
    private readonly string _logPath;
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

    public ManagedProcess(string name, string role, int port, string logPath, Func<ProcessStartInfo> startInfo, Func<CancellationToken, Task<bool>> isReady)
    {
        (Name, Role, Port, _logPath, _startInfo, _isReady) = (name, role, port, logPath, startInfo, isReady);
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
        process.OutputDataReceived += (_, e) => WriteLine(log, e.Data);
        process.ErrorDataReceived += (_, e) => WriteLine(log, e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"{Name} did not start ({start.FileName}).");
        }

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

    /// <summary>A loopback port free now (the kernel's choice), for a server started next.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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

    private static void WriteLine(TextWriter log, string? line)
    {
        if (line is null)
        {
            return;
        }

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
