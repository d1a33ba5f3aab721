using System.Diagnostics;
using StackExchange.Redis;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real <c>redis-server</c> process on a free loopback port, with no persistence. Killed when disposed,
/// and in any case when the test process exits.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    private Process? _process;
    private ConnectionMultiplexer? _client;

    public int Port { get; private set; }

    /// <summary>The StackExchange.Redis configuration string for <c>Baton:Redis</c>.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    /// <summary>A client for inspecting what the gateway wrote.</summary>
    public IDatabase Database => _client!.GetDatabase();

    public async Task InitializeAsync()
    {
        Port = TestProcesses.FreePort();
        await StartAsync();
        _client = await ConnectionMultiplexer.ConnectAsync($"{Configuration},allowAdmin=true,abortConnect=false");
    }

    /// <summary>kill -9: Redis and everything it held are gone.</summary>
    public async Task KillAsync()
    {
        var process = _process!;
        _process = null;
        await TestProcesses.StopAsync(process);
    }

    /// <summary>SIGSTOP: Redis keeps its connections open but answers nothing (a hung Redis).</summary>
    public void Pause() => TestProcesses.Signal(_process!, "STOP");

    public void Resume() => TestProcesses.Signal(_process!, "CONT");

    /// <summary>A new, empty redis-server on the same port.</summary>
    public async Task StartAsync()
    {
        _process = TestProcesses.Start(new ProcessStartInfo("redis-server")
        {
            ArgumentList = { "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", TestPaths.NewFolder("redis") },
        });

        await TestProcesses.WaitForListenerAsync(Port, "redis-server");
    }

    public async Task DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        if (_process is not null)
        {
            TestProcesses.TrySignal(_process, "CONT");
            await TestProcesses.StopAsync(_process);
        }
    }
}
