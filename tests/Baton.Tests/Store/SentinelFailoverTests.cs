using Baton.Tests.Infrastructure;

namespace Baton.Tests.Store;

/// <summary>Redis under Sentinel: the primary is killed and the replica promoted while sessions are in use.</summary>
[Trait("Category", "Functional")]
public sealed class SentinelFailoverTests(RedisSentinelSet redis) : IClassFixture<RedisSentinelSet>, IAsyncLifetime
{
    private readonly List<TestBackend> _backends = [];
    private TestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        _gateway = await TestGateway.StartAsync(_backends, [$"--Baton:Redis={redis.Configuration}", "--Baton:Store:RedisCheckInterval=00:00:00.200"]);
        await _gateway.WaitForRedisAsync();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task ThePrimaryKilledAndTheReplicaPromoted_LosesNoAcknowledgedSession()
    {
        var clients = Enumerable.Range(0, 20).Select(_ => _gateway.NewClient()).ToList();
        var expected = new int[clients.Count];
        async Task RoundAsync()
        {
            for (var i = 0; i < clients.Count; i++)
            {
                Assert.Equal(++expected[i], (await clients[i].IncrementAsync()).Count);
            }
        }

        await RoundAsync();
        await redis.KillPrimaryAsync();
        await RoundAsync();
        await RoundAsync();

        // Once promoted, the replica holds every session's newest version (replicated or refilled).
        using var promoted = redis.ConnectToReplica();
        await Eventually.TrueAsync(
            () =>
            {
                try
                {
                    return clients.Select((c, i) => StoredSessions.FromRedis(promoted.GetDatabase(), SessionCookies.SessionIdOf(c, _gateway))?.Version == expected[i]).All(ok => ok);
                }
                catch (StackExchange.Redis.RedisConnectionException)
                {
                    // The sentinel closes client connections of the replica it promotes: look again.
                    return false;
                }
            },
            TimeSpan.FromSeconds(30),
            "the promoted replica should hold every session's newest version");
        await RoundAsync();
        foreach (var client in clients)
        {
            client.Dispose();
        }
    }
}
