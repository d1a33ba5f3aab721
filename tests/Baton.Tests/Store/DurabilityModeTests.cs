using System.Net;
using Baton.Gateway.Store;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Store;

/// <summary>
/// <c>Baton:Checkpoints:Durability=RiskLossOnGatewayCrash</c>: a change is answered once Redis holds it, before
/// the journal commits. What it risks — a gateway crash before the commit loses the sessions created in that moment,
/// and together with the loss of Redis's data the changes made in it — and that it risks only that: a crash alone
/// loses no change of a session the journal holds, and with Redis unavailable the answer waits for the journal as
/// in the default mode. The journal is held back by another
/// writer holding its lock.
/// </summary>
[Trait("Category", "Functional")]
public sealed class DurabilityModeTests : IAsyncLifetime
{
    private const string RiskLoss = "--Baton:Checkpoints:Durability=RiskLossOnGatewayCrash";
    private readonly RedisAndBackends _servers = new(3);

    public Task InitializeAsync() => _servers.InitializeAsync();

    public Task DisposeAsync() => _servers.DisposeAsync();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ChangesAnsweredBeforeTheJournalCommits_SurviveAGatewayCrash_UnlessRedisLosesItsDataToo_WhileNewSessionsDoNot(bool redisLost)
    {
        var gateway = new GatewayProcess(_servers.Backends.Select(b => b.Address).ToList(), [$"--Baton:Redis={_servers.Redis.Configuration}", RiskLoss]);
        try
        {
            await gateway.StartAsync();
            var older = new CookieContainer();
            var newer = new CookieContainer();
            string owner;
            using (var client = WithJar(older, gateway.Address))
            {
                await client.IncrementAsync();
                owner = (await client.IncrementAsync()).Instance;
            }

            var id = older.GetCookies(gateway.Address)[TestGateway.CookieName]!.Value;
            await Eventually.TrueAsync(() => GatewayStatus.RedisIsCurrentAsync(gateway.Address), TimeSpan.FromSeconds(15), "a check should confirm Redis current, so changes are answered on it alone");
            await Eventually.TrueAsync(() => StoredSessions.FromJournal(gateway.JournalPath, SessionIdOf(id))?.Version == 2, TimeSpan.FromSeconds(10), "the journal should commit the first changes");

            // The journal is held back: a change of the older session and a whole new session are answered all the same.
            using (var held = new JournalLock(gateway.JournalPath))
            {
                using (var client = WithJar(older, gateway.Address))
                {
                    Assert.Equal(3, (await client.IncrementAsync()).Count);
                }

                using (var client = WithJar(newer, gateway.Address))
                {
                    Assert.Equal(1, (await client.IncrementAsync()).Count);
                }

                Assert.Equal(3, StoredSessions.FromRedis(_servers.Redis.Database, SessionIdOf(id))!.Version);
                Assert.Equal(2, StoredSessions.FromJournal(gateway.JournalPath, SessionIdOf(id))!.Version);
                await gateway.KillAsync();
            }

            if (redisLost)
            {
                await _servers.Redis.KillAsync();
                await _servers.Redis.StartAsync();
            }

            // The older session's backend is gone too, so its state comes from the store, not from that backend's memory.
            await _servers.StopAsync(owner);

            await gateway.StartAsync();
            using var olderAgain = WithJar(older, gateway.Address);
            using var newerAgain = WithJar(newer, gateway.Address);
            if (redisLost)
            {
                // The risk taken: what only the lost Redis held is gone (the older session's third change, the newer
                // session, which starts afresh); what the journal committed before is not.
                Assert.Equal(3, (await olderAgain.IncrementAsync()).Count);
                Assert.Equal(1, (await newerAgain.IncrementAsync()).Count);
            }
            else
            {
                Assert.Equal(3, StoredSessions.FromJournal(gateway.JournalPath, SessionIdOf(id))!.Version);

                // Redis kept the older session's change: the restarted gateway takes it into its journal and carries on.
                // A session created in the window is one the journal never held, and a starting gateway takes no such
                // session from Redis (it may as well have ended there): it starts afresh.
                Assert.Equal(4, (await olderAgain.IncrementAsync()).Count);
                Assert.Equal(1, (await newerAgain.IncrementAsync()).Count);
                Assert.Equal(4, StoredSessions.FromJournal(gateway.JournalPath, SessionIdOf(id))!.Version);
            }
        }
        finally
        {
            gateway.Stop();
        }
    }

    [Fact]
    public async Task WithRedisDown_AChangeWaitsForTheJournal()
    {
        await using var gateway = await TestGateway.StartAsync(_servers.Backends, [$"--Baton:Redis={_servers.Redis.Configuration}", RiskLoss]);
        await gateway.WaitForRedisAsync();
        var journal = gateway.Services.GetRequiredService<JournalTier>();
        using var client = gateway.NewClient();
        await client.IncrementAsync();
        var id = SessionCookies.SessionIdOf(client, gateway);
        await _servers.Redis.KillAsync();

        Task<HttpResponseMessage> change;
        using (new JournalLock(gateway.JournalPath))
        {
            change = client.PostAsync(new Uri("/counter", UriKind.Relative), content: null);
            await Eventually.TrueAsync(() => journal.QueueLength == 0 && journal.Lag > TimeSpan.Zero, TimeSpan.FromSeconds(10), "the writer should hold the change");
            Assert.False(change.IsCompleted, "with Redis down the change is answered only once the journal commits it");
        }

        using var answer = await change;
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(2, StoredSessions.FromJournal(gateway.JournalPath, id)!.Int32("counter"));
    }

    private static string SessionIdOf(string cookieValue) => cookieValue[..Baton.Protocol.ProtocolConstants.IdLength];

    private static HttpClient WithJar(CookieContainer jar, Uri address)
    {
        var client = CookieJar.WithJar(jar);
        client.BaseAddress = address;
        return client;
    }
}
