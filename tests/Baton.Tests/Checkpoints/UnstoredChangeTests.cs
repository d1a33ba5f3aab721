using System.Net;
using Baton.Gateway.Store;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Checkpoints;

/// <summary>
/// A change durable nowhere is never acknowledged: with the journal failing while Redis is down, or the journal's
/// write queue full (even with Redis up), the request gets 503 with <c>Retry-After</c>, the backend's answer is
/// withheld, and nothing of the change stays in either tier.
/// </summary>
[Trait("Category", "Functional")]
public sealed class UnstoredChangeTests : IAsyncLifetime
{
    private readonly RedisAndBackends _servers = new(2);

    public Task InitializeAsync() => _servers.InitializeAsync();

    public Task DisposeAsync() => _servers.DisposeAsync();

    [Fact]
    public async Task AChangeWhileTheJournalFailsAndRedisIsDown_Is503WithRetryAfter_AndItsAnswerIsWithheld()
    {
        await using var gateway = await TestGateway.StartAsync(_servers.Backends, [$"--Baton:Redis={_servers.Redis.Configuration}", "--Baton:Journal:LockTimeout=00:00:01"]);
        await gateway.WaitForRedisAsync();
        using var client = gateway.NewClient();
        await client.IncrementAsync();
        var id = SessionCookies.SessionIdOf(client, gateway);
        await _servers.Redis.KillAsync();

        // Another writer holds the journal's lock past the lock timeout: the commit fails, as on a failing disk.
        using (new JournalLock(gateway.JournalPath))
        {
            using var refused = await client.PostAsync(new Uri("/counter", UriKind.Relative), content: null);
            await AssertNotMadeAsync(refused);
        }

        Assert.Equal(1, StoredSessions.FromJournal(gateway.JournalPath, id)!.Version);
        Assert.Equal(2, (await client.IncrementAsync()).Count);
    }

    [Fact]
    public async Task AChangeThatFindsTheJournalQueueFull_Is503EvenWithRedisUp_AndReachesNeitherTier()
    {
        await using var gateway = await TestGateway.StartAsync(_servers.Backends, [$"--Baton:Redis={_servers.Redis.Configuration}", "--Baton:Journal:QueueLength=1"]);
        await gateway.WaitForRedisAsync();
        var journal = gateway.Services.GetRequiredService<JournalTier>();
        var clients = Enumerable.Range(0, 3).Select(_ => gateway.NewClient()).ToList();
        try
        {
            foreach (var client in clients)
            {
                await client.IncrementAsync();
            }

            var ids = clients.Select(c => SessionCookies.SessionIdOf(c, gateway)).ToList();

            // Another writer holds the journal's write lock: the gateway's writer takes the first change and waits on
            // the lock; the second fills the one-place queue; the third finds it full.
            using var blocker = new JournalLock(gateway.JournalPath);
            var first = clients[0].PostAsync(new Uri("/counter", UriKind.Relative), content: null);
            await Eventually.TrueAsync(() => journal.QueueLength == 0 && journal.Lag > TimeSpan.Zero, TimeSpan.FromSeconds(10), "the writer should hold the first change");
            var second = clients[1].PostAsync(new Uri("/counter", UriKind.Relative), content: null);
            await Eventually.TrueAsync(() => journal.QueueLength == 1, TimeSpan.FromSeconds(10), "the second change should wait in the queue");

            using (var refused = await clients[2].PostAsync(new Uri("/counter", UriKind.Relative), content: null))
            {
                await AssertNotMadeAsync(refused);
            }

            Assert.False(first.IsCompleted || second.IsCompleted, "changes waiting for the journal are not answered before it commits them");
            Assert.Equal(1, StoredSessions.FromRedis(_servers.Redis.Database, ids[2])!.Version);

            blocker.Dispose();

            foreach (var waiting in new[] { first, second })
            {
                using var answer = await waiting;
                Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            }

            // The refused change is not made anywhere: the retry is that session's second increment, in both tiers.
            Assert.Equal(2, (await clients[2].IncrementAsync()).Count);
            Assert.Equal(2, StoredSessions.FromJournal(gateway.JournalPath, ids[2])!.Int32("counter"));
            Assert.Equal(2, StoredSessions.FromRedis(_servers.Redis.Database, ids[2])!.Int32("counter"));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    private static async Task AssertNotMadeAsync(HttpResponseMessage refused)
    {
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        var body = await refused.Content.ReadAsStringAsync();
        Assert.Contains("was not made", body, StringComparison.Ordinal);
        Assert.DoesNotContain("instance", body, StringComparison.Ordinal);
    }
}
