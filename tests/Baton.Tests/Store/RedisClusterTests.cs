using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;

namespace Baton.Tests.Store;

/// <summary>
/// Redis Cluster as the fast tier (three primaries, a replica each, real redis-server processes) with a PostgreSQL
/// journal: sessions spread over every shard, move between backends, and outlive a primary killed with writes its
/// replica never received.
/// </summary>
[Trait("Category", "Functional")]
public sealed class RedisClusterTests(RedisClusterSet cluster) : IClassFixture<RedisClusterSet>, IAsyncLifetime, IDisposable
{
    private const int Sessions = 30;
    private readonly List<TestBackend> _backends = [];
    private readonly LogCapture _logs = new();
    private TestJournal _journal = null!;
    private TestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        _journal = await TestJournal.StartAsync(JournalKind.PostgreSql);
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        _gateway = await TestGateway.StartAsync(
            _backends,
            // A generous budget: on a small machine a slow answer is not what this test looks for, an error is.
            [$"--Baton:Redis={cluster.Configuration}", "--Baton:Store:RedisCheckInterval=00:00:00.200", "--Baton:Store:RedisBudget=00:00:02", .. _journal.GatewayArgs],
            _logs.AttachTo);
        await _gateway.WaitForRedisAsync();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        await _journal.DisposeAsync();
    }

    public void Dispose() => _logs.Dispose();

    [Fact]
    public async Task SessionsOnEveryShard_MoveWithoutARedisError_AndAPrimaryKilledWithUnreplicatedWrites_LosesNothing()
    {
        using var unavailable = new InstrumentCounter(_gateway, "baton.redis.unavailable");
        using var refilled = new InstrumentCounter(_gateway, "baton.redis.refilled");
        using var moves = new InstrumentCounter(_gateway, "baton.session.moved");
        var clients = Enumerable.Range(0, Sessions).Select(_ => _gateway.NewClient()).ToList();
        var expected = new int[clients.Count];
        async Task RoundAsync()
        {
            await Task.WhenAll(clients.Select(async (client, i) => Assert.Equal(++expected[i], (await client.IncrementAsync()).Count)));
        }

        try
        {
            await RoundAsync();
            await RoundAsync();
            var ids = clients.Select(c => SessionCookies.SessionIdOf(c, _gateway)).ToList();
            var keys = ids.Select(id => StoredSessions.RedisKey(id)).ToList();

            // Every shard holds sessions, and every session's newest version is in Redis.
            var perPrimary = await cluster.KeysPerPrimaryAsync(keys);
            Assert.Equal(3, perPrimary.Count);
            Assert.All(ids, (id, i) => Assert.Equal(expected[i], StoredSessions.FromRedis(cluster.Database, id)?.Version));

            // A backend gone: its sessions move (restored from Redis, on whichever shard) and count on.
            await _backends[0].DisposeAsync();
            _backends.RemoveAt(0);
            await RoundAsync();
            await RoundAsync();
            Assert.True(moves.Total > 0, "some sessions should have moved off the stopped backend");
            Assert.Equal(0, unavailable.Total);
            Assert.DoesNotContain(_logs.Lines, line => line.Contains("CROSSSLOT", StringComparison.Ordinal) || line.Contains("RedisCallFailed", StringComparison.Ordinal));

            // The shard of the first session loses its replica's link; the writes that follow reach its primary alone.
            var doomed = keys[0];
            var doomedPrimary = await cluster.PrimaryOfAsync(doomed);
            var lagging = perPrimary[doomedPrimary];
            await cluster.CutReplicationOfAsync(doomed);
            await RoundAsync();
            var refilledBefore = refilled.Total;
            await cluster.KillPrimaryOfAsync(doomed);

            // The promoted replica lacked those writes: the gateway sees a new run id among the primaries and
            // writes every session back from the journal, so Redis holds each newest version again before any write.
            await Eventually.TrueAsync(
                () =>
                {
                    try
                    {
                        return ids.Select((id, i) => StoredSessions.FromRedis(cluster.Database, id)?.Version == expected[i]).All(ok => ok);
                    }
                    catch (StackExchange.Redis.RedisException)
                    {
                        return false;
                    }
                },
                TimeSpan.FromSeconds(30),
                "Redis should hold every session's newest version again, the promoted shard's too");
            Assert.True(refilled.Total - refilledBefore >= lagging, $"the refill should have written back the {lagging} sessions the promoted replica lacked (wrote {refilled.Total - refilledBefore})");

            await RoundAsync();
            await RoundAsync();
            Assert.All(ids, (id, i) => Assert.Equal(expected[i], StoredSessions.FromRedis(cluster.Database, id)?.Version));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }
}
