using System.Collections.Concurrent;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Functional;

[Trait("Category", "Functional")]
public sealed class StickySessionTests(TestCluster cluster) : IClassFixture<TestCluster>
{
    [Fact]
    public async Task FiftySessions_TwentyRequestsEach_EachSessionStaysOnOneInstanceAndAllInstancesAreUsed()
    {
        const int Sessions = 50;
        const int RequestsPerSession = 20;
        var instancesBySession = new ConcurrentDictionary<int, HashSet<string>>();

        await Parallel.ForEachAsync(Enumerable.Range(0, Sessions), new ParallelOptions { MaxDegreeOfParallelism = 10 }, async (session, _) =>
        {
            using var client = cluster.Gateway.NewClient();
            var seen = new HashSet<string>();
            for (var i = 1; i <= RequestsPerSession; i++)
            {
                var answer = await client.IncrementAsync();
                seen.Add(answer.Instance);

                // The count only climbs one by one if every request reached the session's own memory.
                Assert.Equal(i, answer.Count);
            }

            instancesBySession[session] = seen;
        });

        Assert.Equal(Sessions, instancesBySession.Count);
        Assert.All(instancesBySession.Values, seen => Assert.Single(seen));
        var used = instancesBySession.Values.Select(seen => seen.Single()).ToHashSet();
        Assert.Equal(["b1", "b2", "b3"], used.Order());
    }

    [Fact]
    public async Task GatewayHealthEndpoints_AnswerThemselves_AndAreNotProxied()
    {
        using var client = cluster.Gateway.NewRawClient();

        using var live = await client.GetAsync(new Uri("/_baton/live", UriKind.Relative));
        using var ready = await client.GetAsync(new Uri("/_baton/ready", UriKind.Relative));

        Assert.Equal(System.Net.HttpStatusCode.OK, live.StatusCode);
        Assert.Equal(System.Net.HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("Healthy", await ready.Content.ReadAsStringAsync());
        Assert.False(live.Headers.Contains("Set-Cookie"));
    }
}
