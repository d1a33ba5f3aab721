using Baton.LoadTest;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Failover;

/// <summary>
/// A large session whose small changes travel as deltas, with each library's demo backend in its own process behind a
/// real gateway, Redis and SQLite journal: killed, its backend's successor is restored the whole state, chain folded in.
/// </summary>
[Trait("Category", "Functional")]
public sealed class LargeSessionFailoverTests
{
    private static readonly string[] GatewaySettings =
    [
        "--ReverseProxy:Clusters:demo:HttpRequest:ActivityTimeout=00:00:02",
        "--ReverseProxy:Clusters:demo:HealthCheck:Active:Interval=00:00:01",
        "--Baton:Failover:NoDestinationWait=00:00:03",
    ];

    [Theory]
    [MemberData(nameof(BackendKinds.All), MemberType = typeof(BackendKinds))]
    public async Task SmallChangesToALargeSession_AreStoredAsDeltas_AndItsBackendsDeathLosesNoneOfIt(BackendKind kind)
    {
        await using var cluster = await ProcessCluster.StartAsync(GatewaySettings, kind: kind);
        using var deltas = new InstrumentCounter(cluster.Gateway, "baton.checkpoint.count", "baton.checkpoint.kind", "delta");
        using var client = cluster.Gateway.NewClient();
        var blob = await client.BlobAsync(HttpMethod.Post, 65_536);
        for (var i = 0; i < 5; i++)
        {
            await client.IncrementAsync();
        }

        // The first increment may go whole (the blob's version is the first one stored); the others are deltas.
        Assert.True(deltas.Total >= 4, $"{deltas.Total} of five increments were stored as deltas");
        var before = await client.IncrementAsync();
        Assert.Equal(6, before.Count);

        await cluster.Backend(before.Instance).KillAsync();
        var after = await client.IncrementAsync();

        Assert.Equal(7, after.Count);
        Assert.NotEqual(before.Instance, after.Instance);
        var read = await client.BlobAsync(HttpMethod.Get);
        Assert.Equal((blob.Sha256, 65_536), (read.Sha256, read.Bytes));
        Assert.Equal(8, (await client.IncrementAsync()).Count);
    }
}
