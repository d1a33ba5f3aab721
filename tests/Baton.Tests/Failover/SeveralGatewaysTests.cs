using System.Net;
using System.Net.Http.Json;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Baton.Tests.Failover;

/// <summary>
/// Two gateways on one real PostgreSQL journal and one real redis-server, in front of the same three backends, each
/// session's requests going through both: one truth about every session, whichever gateway a request reaches.
/// </summary>
[Trait("Category", "Functional")]
public sealed class SeveralGatewaysTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private readonly List<TestBackend> _backends = [];
    private TestJournal _journal = null!;
    private TestGateway _a = null!;
    private TestGateway _b = null!;

    public async Task InitializeAsync()
    {
        await _redis.InitializeAsync();
        _journal = await TestJournal.StartAsync(JournalKind.PostgreSql);
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        string[] args = [$"--Baton:Store:Redis={_redis.Configuration}", .. _journal.GatewayArgs];
        _a = await TestGateway.StartAsync(_backends, args);
        _b = await TestGateway.StartAsync(_backends, args);
        await _a.WaitForRedisAsync();
        await _b.WaitForRedisAsync();
        foreach (var gateway in new[] { _a, _b })
        {
            var store = gateway.Services.GetRequiredService<Baton.Gateway.Store.SessionStore>();
            await Eventually.TrueAsync(() => store.IsListening, TimeSpan.FromSeconds(20), "the gateway should hear the others' pin notices");
        }
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        await _journal.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task RequestsAlternatingBetweenTwoGateways_ContinueEachSessionExactly_AndAMoveThroughOneIsHonouredByTheOtherOnItsVeryNextRequest()
    {
        var sessions = Enumerable.Range(0, 12).Select(_ => new Browser(_a, _b)).ToList();
        for (var round = 1; round <= 4; round++)
        {
            foreach (var session in sessions)
            {
                var answer = await session.Via(round).IncrementAsync();
                Assert.Equal(round, answer.Count);
                session.Owner = answer.Instance;
            }
        }

        // Gateway A alone sees the owner of the first session fail: the session moves through A, while the owner stays
        // up and, to B, healthy — still holding its copy of the session as it was before the move.
        var moved = sessions[0];
        await MarkDownAsync(_a, moved.Owner!);
        var afterMove = await moved.ThroughA.IncrementAsync();
        Assert.Equal(5, afterMove.Count);
        Assert.NotEqual(moved.Owner, afterMove.Instance);

        // B's very next request, a read: answered by the new owner with the new count, never by the old copy.
        var read = await moved.ThroughB.GetFromJsonAsync<CounterAnswer>("/counter");
        Assert.Equal((5, afterMove.Instance), (read!.Count, read.Instance));
        var written = await moved.ThroughB.IncrementAsync();
        Assert.Equal((6, afterMove.Instance), (written.Count, written.Instance));

        foreach (var session in sessions.Skip(1))
        {
            Assert.Equal(5, (await session.ThroughB.IncrementAsync()).Count);
            Assert.Equal(6, (await session.ThroughA.IncrementAsync()).Count);
        }
    }

    [Fact]
    public async Task ABackendKilledWhileItsSessionsRequestsArriveThroughBothGateways_IsRestoredOncePerSession_AndEveryRequestIsAnswered()
    {
        var sessions = Enumerable.Range(0, 24).Select(_ => new Browser(_a, _b)).ToList();
        for (var round = 1; round <= 3; round++)
        {
            foreach (var session in sessions)
            {
                var answer = await session.Via(round).IncrementAsync();
                Assert.Equal(round, answer.Count);
                session.Owner = answer.Instance;
            }
        }

        var victim = _backends.OrderByDescending(b => sessions.Count(s => s.Owner == b.InstanceId)).First();
        var orphans = sessions.Count(s => s.Owner == victim.InstanceId);
        Assert.True(orphans > 0);
        using var restoredByA = new InstrumentCounter(_a, "baton.restore.count", "baton.outcome", "ok");
        using var restoredByB = new InstrumentCounter(_b, "baton.restore.count", "baton.outcome", "ok");
        await victim.DisposeAsync();
        _backends.Remove(victim);

        // Every session read through both gateways at once, several times over: each answer is the session's own count.
        var reads = sessions.SelectMany(session => Enumerable.Range(0, 3).SelectMany(_ => new[] { session.ThroughA, session.ThroughB })
            .Select(async client =>
            {
                using var response = await client.GetAsync(new Uri("/counter", UriKind.Relative));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                return (Session: session, Answer: (await response.Content.ReadFromJsonAsync<CounterAnswer>())!);
            }));
        foreach (var (session, answer) in await Task.WhenAll(reads))
        {
            Assert.Equal(3, answer.Count);
            Assert.NotEqual(victim.InstanceId, answer.Instance);
        }

        // Exactly one restore per session that lived on the killed backend, over both gateways.
        Assert.Equal(orphans, restoredByA.Total + restoredByB.Total);

        foreach (var session in sessions)
        {
            Assert.Equal(4, (await session.ThroughB.IncrementAsync()).Count);
            Assert.Equal(5, (await session.ThroughA.IncrementAsync()).Count);
        }

        Assert.Equal(orphans, restoredByA.Total + restoredByB.Total);
    }

    [Fact]
    public async Task ASessionEndedOrRenewedThroughOneGateway_IsNeverContinuedThroughTheOther_WithItsOldCookie()
    {
        var leaving = new Browser(_a, _b);
        var renewing = new Browser(_a, _b);
        foreach (var browser in new[] { leaving, renewing })
        {
            Assert.Equal(1, (await browser.ThroughA.IncrementAsync()).Count);
            Assert.Equal(2, (await browser.ThroughB.IncrementAsync()).Count);
        }

        var leftCookie = CookieJar.Of(leaving.ThroughA).GetCookies(_a.Address)[TestGateway.CookieName]!.Value;
        var renewedCookie = CookieJar.Of(renewing.ThroughA).GetCookies(_a.Address)[TestGateway.CookieName]!.Value;
        using (var logout = await leaving.ThroughA.PostAsync(new Uri("/logout", UriKind.Relative), content: null))
        {
            Assert.True(logout.IsSuccessStatusCode);
        }

        using (var login = await renewing.ThroughA.PostAsJsonAsync(new Uri("/login", UriKind.Relative), new { user = "ada" }))
        {
            Assert.True(login.IsSuccessStatusCode);
        }

        // Whoever replays the old cookies through B (a copy the browser kept, or one an attacker took) gets a new,
        // empty session, never the one that ended or moved to a new id.
        foreach (var old in new[] { leftCookie, renewedCookie })
        {
            using var replay = _b.NewRawClient();
            using var request = new HttpRequestMessage(HttpMethod.Get, "/counter");
            request.Headers.Add("Cookie", $"{TestGateway.CookieName}={old}");
            using var response = await replay.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(0, (await response.Content.ReadFromJsonAsync<CounterAnswer>())!.Count);
        }

        // The renewed session continues through B under its new id.
        Assert.Equal(3, (await renewing.ThroughB.IncrementAsync()).Count);
    }

    [Fact]
    public async Task ABackendKilledWhileTheJournalIsDown_IsNeverRestoredTwiceOrEmpty_RequestsGet503_AndEverySessionContinuesOnceItIsBack()
    {
        var sessions = Enumerable.Range(0, 12).Select(_ => new Browser(_a, _b)).ToList();
        for (var round = 1; round <= 2; round++)
        {
            foreach (var session in sessions)
            {
                var answer = await session.Via(round).IncrementAsync();
                Assert.Equal(round, answer.Count);
                session.Owner = answer.Instance;
            }
        }

        var victim = _backends.OrderByDescending(b => sessions.Count(s => s.Owner == b.InstanceId)).First();
        var orphans = sessions.Where(s => s.Owner == victim.InstanceId).ToList();
        using var restoredByA = new InstrumentCounter(_a, "baton.restore.count", "baton.outcome", "ok");
        using var restoredByB = new InstrumentCounter(_b, "baton.restore.count", "baton.outcome", "ok");
        await using (await _journal.OutageAsync(string.Empty, hang: false))
        {
            await victim.DisposeAsync();
            _backends.Remove(victim);

            // Nobody can claim their moves: every request of theirs, through either gateway, is refused (never a 500),
            // and nothing is restored.
            foreach (var session in orphans)
            {
                foreach (var client in new[] { session.ThroughA, session.ThroughB })
                {
                    using var response = await client.GetAsync(new Uri("/counter", UriKind.Relative));
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                }
            }

            Assert.Equal(0, restoredByA.Total + restoredByB.Total);
        }

        foreach (var session in sessions)
        {
            Assert.Equal(3, (await session.ThroughB.IncrementAsync()).Count);
            Assert.Equal(4, (await session.ThroughA.IncrementAsync()).Count);
        }

        Assert.Equal(orphans.Count, restoredByA.Total + restoredByB.Total);
    }

    // Marks the destination down in one gateway only (as its own passive health would after a failure it alone saw).
    private static async Task MarkDownAsync(TestGateway gateway, string destinationId)
    {
        var services = gateway.Services;
        Assert.True(services.GetRequiredService<IProxyStateLookup>().TryGetCluster("demo", out var cluster));
        var destination = cluster.Destinations[destinationId];
        services.GetRequiredService<IDestinationHealthUpdater>().SetPassive(cluster, destination, DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1));
        await Eventually.TrueAsync(() => !cluster.DestinationsState.AvailableDestinations.Contains(destination), TimeSpan.FromSeconds(10), "the destination should leave the gateway's available destinations");
    }

    /// <summary>One browser (one cookie jar) whose requests reach either gateway.</summary>
    private sealed class Browser(TestGateway a, TestGateway b)
    {
        private readonly CookieContainer _jar = new();

        public HttpClient ThroughA => field ??= a.ClientWithJar(_jar);

        public HttpClient ThroughB => field ??= b.ClientWithJar(_jar);

        public string? Owner { get; set; }

        public HttpClient Via(int round) => round % 2 == 1 ? ThroughA : ThroughB;
    }
}
