using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Baton.Tests.Infrastructure;

/// <summary>Processes tests start (redis-server, backends): free ports, and a kill for every one left at exit.</summary>
internal static class TestProcesses
{
    private static readonly List<Process> Running = [];
    private static readonly HashSet<int> HandedOut = [];

    static TestProcesses()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            lock (Running)
            {
                foreach (var process in Running)
                {
                    Kill(process);
                }
            }
        };
    }

    /// <summary>Waits until something accepts TCP connections on the loopback port.</summary>
    public static Task WaitForListenerAsync(int port, string what) => Eventually.TrueAsync(
        () =>
        {
            try
            {
                using var socket = new TcpClient();
                socket.Connect(IPAddress.Loopback, port);
                return true;
            }
            catch (SocketException)
            {
                return false;
            }
        },
        TimeSpan.FromSeconds(20),
        $"{what} should accept connections on port {port}");

    /// <summary>
    /// A loopback port for a process to bind later. Chosen below the kernel's ephemeral range (so servers
    /// binding port 0 in the meantime cannot take it) and never handed out twice in this run.
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

    /// <summary>Starts the process with its output drained, and tracks it until <see cref="StopAsync"/>.</summary>
    /// <param name="output">Receives each line the process writes to stdout; discarded when null.</param>
    public static Process Start(ProcessStartInfo start, Action<string>? output = null)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{start.FileName} did not start");
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                output?.Invoke(e.Data);
            }
        };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        lock (Running)
        {
            Running.Add(process);
        }

        return process;
    }

    /// <summary>kill -9, then forget the process.</summary>
    public static async Task StopAsync(Process process)
    {
        Kill(process);
        await process.WaitForExitAsync();
        lock (Running)
        {
            Running.Remove(process);
        }

        process.Dispose();
    }

    /// <summary>Sends a signal by name (STOP, CONT, ...) with kill(1); false if the process is gone.</summary>
    public static bool TrySignal(Process process, string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        return kill.ExitCode == 0;
    }

    /// <summary>Sends a signal by name; the process must be running.</summary>
    public static void Signal(Process process, string signal)
    {
        if (!TrySignal(process, signal))
        {
            throw new InvalidOperationException($"kill -{signal} {process.Id} failed");
        }
    }

    private static void Kill(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
        }
    }
}
