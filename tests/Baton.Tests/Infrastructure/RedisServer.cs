using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real <c>redis-server</c> process on a free loopback port, with no persistence. Killed when disposed,
/// and in any case when the test process exits.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    private static readonly List<Process> Running = [];
    private Process? _process;
    private ConnectionMultiplexer? _client;

    static RedisServer()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            lock (Running)
            {
                foreach (var process in Running)
                {
                    KillQuietly(process);
                }
            }
        };
    }

    public int Port { get; private set; }

    /// <summary>The StackExchange.Redis configuration string for <c>Baton:Redis</c>.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    /// <summary>A client for inspecting what the gateway wrote.</summary>
    public IDatabase Database => _client!.GetDatabase();

    public async Task InitializeAsync()
    {
        Port = FreePort();
        var start = new ProcessStartInfo("redis-server")
        {
            ArgumentList = { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", TestPaths.NewFolder("redis") },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start; is it installed (apt-get install redis-server)?");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        lock (Running)
        {
            Running.Add(_process);
        }

        await Eventually.TrueAsync(CanConnect, TimeSpan.FromSeconds(20), "redis-server should accept connections");
        _client = await ConnectionMultiplexer.ConnectAsync($"{Configuration},allowAdmin=true");
    }

    public async Task DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        if (_process is not null)
        {
            KillQuietly(_process);
            await _process.WaitForExitAsync();
            lock (Running)
            {
                Running.Remove(_process);
            }

            _process.Dispose();
        }
    }

    private bool CanConnect()
    {
        try
        {
            using var socket = new TcpClient();
            socket.Connect(IPAddress.Loopback, Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void KillQuietly(Process process)
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
