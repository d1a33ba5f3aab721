using Baton.LoadTest;
using StackExchange.Redis;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real <c>redis-server</c> process on a free loopback port, with no persistence. Killed when disposed,
/// and in any case when the test process exits.
/// </summary>
public sealed class RedisServer : IAsyncLifetime
{
    private ManagedProcess? _process;
    private ConnectionMultiplexer? _client;

    public int Port { get; private set; }

    /// <summary>The StackExchange.Redis configuration string for <c>Baton:Redis</c>.</summary>
    public string Configuration => $"127.0.0.1:{Port}";

    /// <summary>A client for inspecting what the gateway wrote.</summary>
    public IDatabase Database => _client!.GetDatabase();

    /// <summary>The server itself, for key scans and INFO.</summary>
    public IServer Server => _client!.GetServer(Configuration);

    /// <summary>The server's run id: new on every start, kept through a FLUSHALL.</summary>
    public async Task<string> RunIdAsync()
        => (await Server.InfoAsync("server")).SelectMany(group => group).First(pair => pair.Key == "run_id").Value;

    public async Task InitializeAsync()
    {
        Port = ManagedProcess.FreePort();
        _process = TestServers.Redis("redis", Port);
        await StartAsync();
        _client = await ConnectionMultiplexer.ConnectAsync($"{Configuration},allowAdmin=true,abortConnect=false");
    }

    /// <summary>kill -9: Redis and everything it held are gone.</summary>
    public Task KillAsync()
    {
        _process!.Kill();
        return Task.CompletedTask;
    }

    /// <summary>SIGSTOP: Redis keeps its connections open but answers nothing (a hung Redis).</summary>
    public void Pause() => _process!.Pause();

    public void Resume() => _process!.Resume();

    /// <summary>A new, empty redis-server on the same port.</summary>
    public Task StartAsync() => TestServers.StartAsync(_process!);

    public async Task DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        _process?.Dispose();
    }
}
