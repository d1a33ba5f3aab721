using Baton.LoadTest;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real redis-server, three demo backends (b1..b3, of either kind) in their own processes — so a test can kill, pause and
/// restart them for real — and an in-process gateway in front, using Redis. One per test.
/// </summary>
internal sealed class ProcessCluster : IAsyncDisposable
{
    private readonly List<BackendProcess> _backends = [];

    private ProcessCluster(RedisServer redis) => Redis = redis;

    public RedisServer Redis { get; }

    public IReadOnlyList<BackendProcess> Backends => _backends;

    public TestGateway Gateway { get; private set; } = null!;

    /// <param name="grpc">Give each backend a cleartext HTTP/2 endpoint too, and the gateway a cluster <c>grpc</c> of them.</param>
    /// <param name="kind">Which demo the backends run.</param>
    public static async Task<ProcessCluster> StartAsync(IEnumerable<string> gatewayArgs, bool grpc = false, BackendKind kind = BackendKind.Dotnet)
    {
        var cluster = new ProcessCluster(new RedisServer());
        try
        {
            await cluster.Redis.InitializeAsync();
            var started = await Task.WhenAll(Enumerable.Range(1, 3).Select(i => BackendProcess.StartAsync($"b{i}", grpc, kind)));
            cluster._backends.AddRange(started.OrderBy(b => b.InstanceId, StringComparer.Ordinal));
            List<string> args = [$"--Baton:Redis={cluster.Redis.Configuration}", .. gatewayArgs];
            if (grpc)
            {
                args.AddRange(GrpcCluster(cluster._backends));
            }

            cluster.Gateway = await TestGateway.StartAsync(cluster._backends, args);
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

    // The demo cluster's settings for the backends' gRPC endpoints, HTTP/2 end to end; the same destination
    // names, so a session pinned to b2 over HTTP/1.1 streams to b2's gRPC endpoint.
    private static IEnumerable<string> GrpcCluster(IReadOnlyList<BackendProcess> backends)
    {
        const string Cluster = "--ReverseProxy:Clusters:grpc:";
        yield return "--ReverseProxy:Routes:grpc:ClusterId=grpc";
        yield return "--ReverseProxy:Routes:grpc:Order=-1";
        yield return "--ReverseProxy:Routes:grpc:Match:Path=/baton.demo.Echo/{**method}";
        yield return Cluster + "HttpRequest:Version=2";
        yield return Cluster + "HttpRequest:VersionPolicy=RequestVersionExact";
        yield return Cluster + "SessionAffinity:Enabled=true";
        yield return Cluster + "SessionAffinity:Policy=Baton";
        yield return Cluster + "SessionAffinity:FailurePolicy=Baton";
        yield return Cluster + "SessionAffinity:AffinityKeyName=baton.sid";
        yield return Cluster + "HealthCheck:AvailableDestinationsPolicy=Baton";
        yield return Cluster + "HealthCheck:Passive:Enabled=true";
        yield return Cluster + "HealthCheck:Passive:Policy=Baton";
        foreach (var backend in backends)
        {
            yield return $"{Cluster}Destinations:{backend.InstanceId}:Address={backend.GrpcAddress}";
        }
    }

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
