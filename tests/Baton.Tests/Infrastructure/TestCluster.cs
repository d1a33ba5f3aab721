namespace Baton.Tests.Infrastructure;

/// <summary>Three DemoBackends (b1..b3) behind one gateway (journal only), all real, all on loopback.</summary>
public class TestCluster : IAsyncLifetime
{
    private readonly List<TestBackend> _backends = [];

    internal TestGateway Gateway { get; private set; } = null!;

    internal IReadOnlyList<TestBackend> Backends => _backends;

    /// <summary>The Redis tier, when this cluster has one.</summary>
    public RedisServer? Redis { get; private set; }

    internal string JournalPath => Gateway.JournalPath;

    protected virtual bool WithRedis => false;

    /// <summary>Settings of this cluster's gateway beyond the shipped ones.</summary>
    protected virtual string[] GatewayArgs => [];

    public async Task InitializeAsync()
    {
        List<string> args = [.. GatewayArgs];
        if (WithRedis)
        {
            Redis = new RedisServer();
            await Redis.InitializeAsync();
            args.Add($"--Baton:Redis={Redis.Configuration}");
        }

        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        Gateway = await TestGateway.StartAsync(_backends, args);
        if (Redis is not null)
        {
            await Gateway.WaitForRedisAsync();
        }
    }

    public async Task DisposeAsync()
    {
        if (Gateway is not null)
        {
            await Gateway.DisposeAsync();
        }

        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
    }
}
