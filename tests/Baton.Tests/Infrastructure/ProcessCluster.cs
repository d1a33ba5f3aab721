namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real redis-server, three DemoBackends (b1..b3) in their own processes — so a test can kill, pause and
/// restart them for real — and an in-process gateway in front, using Redis. One per test.
/// </summary>
internal sealed class ProcessCluster : IAsyncDisposable
{
    private readonly List<BackendProcess> _backends = [];

    private ProcessCluster(RedisServer redis) => Redis = redis;

    public RedisServer Redis { get; }

    public IReadOnlyList<BackendProcess> Backends => _backends;

    public TestGateway Gateway { get; private set; } = null!;

    public static async Task<ProcessCluster> StartAsync(IEnumerable<string> gatewayArgs)
    {
        var cluster = new ProcessCluster(new RedisServer());
        try
        {
            await cluster.Redis.InitializeAsync();
            var started = await Task.WhenAll(Enumerable.Range(1, 3).Select(i => BackendProcess.StartAsync($"b{i}")));
            cluster._backends.AddRange(started.OrderBy(b => b.InstanceId, StringComparer.Ordinal));
            cluster.Gateway = await TestGateway.StartAsync(cluster._backends, [$"--Baton:Redis={cluster.Redis.Configuration}", .. gatewayArgs]);
            await cluster.Gateway.WaitForRedisAsync();
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public BackendProcess Backend(string instance) => _backends.Single(b => b.InstanceId == instance);

    public async ValueTask DisposeAsync()
    {
        if (Gateway is not null)
        {
            await Gateway.DisposeAsync();
        }

        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        await Redis.DisposeAsync();
    }
}
