using System.Net;
using Baton.Gateway.Sessions;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Baton.Tests.Functional;

/// <summary>
/// Session fixation racing a login, on real gateways and backends: an attacker who planted a session id keeps requests of
/// it on their way while the victim signs in on it. The gateway is held at the moment it stores the login's response
/// (its state is the signed-in one), and the planted id's requests meet it there — waiting at the backend behind the
/// login, arriving at the gateway, arriving at another gateway on the same journal. None of them is ever served the
/// signed-in state, nothing of the planted id is restored anywhere, the planted id never works again, and the victim
/// carries on under the new id.
/// </summary>
[Trait("Category", "Functional")]
public sealed class RotationRaceTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ARequestOfThePlantedIdWaitingBehindTheLogin_IsRefused_NeverServedTheSignedInState_AndTheIdIsRestoredNowhere(bool backendsForgetRetiredIds)
    {
        await using var cluster = await Cluster.StartAsync(backendsForgetRetiredIds);
        var gateway = cluster.Gateway;
        using var victim = gateway.NewRawClient();
        using var attacker = gateway.NewRawClient();
        var (planted, _, _) = await SendAsync(victim, HttpMethod.Post, "/inc", cookie: null);
        Assert.NotNull(planted);
        var owner = await cluster.OwnerOfAsync(planted);
        var gate = owner.Services.GetRequiredService<RequestGate>();
        using var restores = new InstrumentCounter(gateway, "baton.restore.count");

        // Whatever moves the planted id from here waits until the login's state is being stored; the state's own write
        // under the new id waits until the test has seen the planted id's request answered.
        var holds = HeldTiers.Of(gateway);
        var moves = holds.Hold((kind, id) => kind == "claim" && id == IdOf(planted));
        var storing = holds.Hold((kind, id) => kind == "checkpoint" && id != IdOf(planted));
        var login = SendAsync(victim, HttpMethod.Post, "/rotate-held", planted);
        await gate.Entered.WaitAsync(Wait);

        // The attacker's request of the planted id reaches the backend while the login holds the session: it waits.
        var attack = SendAsync(attacker, HttpMethod.Get, "/whoami", planted, arrival: true);
        await gate.Arrived.WaitAsync(Wait);
        gate.Release();
        await storing.Reached.WaitAsync(Wait);
        moves.Release();

        var (_, seen, answer) = await attack.WaitAsync(Wait);
        Assert.DoesNotContain("ann", seen, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
        Assert.NotNull(answer.Headers.RetryAfter);
        Assert.Contains("renewed or ended", seen, StringComparison.Ordinal);
        Assert.Equal(0, restores.Total);

        storing.Release();
        var (renewed, rotated, _) = await login.WaitAsync(Wait);
        Assert.Equal("rotated", rotated);
        Assert.NotNull(renewed);
        Assert.Equal(0, restores.Total);
        await AssertOnlyTheNewIdIsSignedInAsync(gateway, planted, renewed);
    }

    [Fact]
    public async Task ARequestOfThePlantedIdArrivingWhileTheLoginIsBeingStored_GetsAFreshSession_EvenWhereItWouldBeMovedToABackendThatNeverSawTheLogin()
    {
        await using var cluster = await Cluster.StartAsync(backendsForgetRetiredIds: false);
        var gateway = cluster.Gateway;
        using var victim = gateway.NewRawClient();
        using var attacker = gateway.NewRawClient();
        var (planted, _, _) = await SendAsync(victim, HttpMethod.Post, "/inc", cookie: null);
        Assert.NotNull(planted);
        var owner = await cluster.OwnerOfAsync(planted);
        using var restores = new InstrumentCounter(gateway, "baton.restore.count");

        var storing = HeldTiers.Of(gateway).Hold((kind, id) => kind == "checkpoint" && id != IdOf(planted));
        var login = SendAsync(victim, HttpMethod.Post, "/rotate", planted);
        await storing.Reached.WaitAsync(Wait);

        // The login's backend goes out for this gateway: a request of a live session pinned there would be moved, its last
        // state restored on a backend that knows nothing of the login.
        await MarkDownAsync(gateway, owner.InstanceId);
        var (fresh, seen, answer) = await SendAsync(attacker, HttpMethod.Get, "/whoami", planted);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("-", seen);
        Assert.NotNull(fresh);
        Assert.NotEqual(planted, fresh);
        Assert.Equal(0, restores.Total);

        storing.Release();
        var (renewed, rotated, _) = await login.WaitAsync(Wait);
        Assert.Equal("rotated", rotated);
        Assert.NotNull(renewed);
        await AssertOnlyTheNewIdIsSignedInAsync(gateway, planted, renewed);
    }

    [Fact]
    public async Task AChangeStoredWhileTheSessionRotates_IsAnsweredAsMade_ForTheLoginCarriedIt_AndNothingStaysUnderTheOldId()
    {
        await using var cluster = await Cluster.StartAsync(backendsForgetRetiredIds: false);
        var gateway = cluster.Gateway;
        using var browser = gateway.NewRawClient();
        var (planted, _, _) = await SendAsync(browser, HttpMethod.Post, "/inc", cookie: null);
        Assert.NotNull(planted);

        // A change of the session is being stored when the login comes: the login ran after it on the backend, so the
        // state the login carries to the new id holds it.
        var storingChange = HeldTiers.Of(gateway).Hold((kind, id) => kind == "checkpoint" && id == IdOf(planted));
        var change = SendAsync(browser, HttpMethod.Post, "/inc", planted);
        await storingChange.Reached.WaitAsync(Wait);
        var (renewed, rotated, _) = await SendAsync(browser, HttpMethod.Post, "/rotate", planted);
        Assert.Equal("rotated", rotated);
        Assert.NotNull(renewed);

        storingChange.Release();
        var (_, count, answer) = await change.WaitAsync(Wait);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("2", count);
        var (_, carried, _) = await SendAsync(browser, HttpMethod.Get, "/read", renewed);
        Assert.Equal("2/-", carried);

        // The late write of the old id went into the journal after the old id ended there: it is taken out again, so not
        // even a restarted gateway could bring the old id back.
        await Eventually.TrueAsync(() => StoredSessions.FromJournal(gateway.JournalPath, IdOf(planted)) is null, Wait, "the old id should not stay in the journal");
        await AssertOnlyTheNewIdIsSignedInAsync(gateway, planted, renewed);
    }

    [Fact]
    public async Task ThroughAnotherGatewayOnTheSameJournal_ThePlantedIdIsNeverServedTheSignedInState_WhileTheLoginIsBeingStored_NorAfter()
    {
        var redis = new RedisServer();
        await redis.InitializeAsync();
        try
        {
            await using var journal = await TestJournal.StartAsync(JournalKind.PostgreSql);
            await AcrossTwoGatewaysAsync([$"--Baton:Store:Redis={redis.Configuration}", .. journal.GatewayArgs]);
        }
        finally
        {
            await redis.DisposeAsync();
        }
    }

    private static async Task AcrossTwoGatewaysAsync(string[] args)
    {
        await using var cluster = await Cluster.StartAsync(backendsForgetRetiredIds: true, args);
        await using var other = await TestGateway.StartAsync(cluster.Backends, args);
        foreach (var gateway in new[] { cluster.Gateway, other })
        {
            await gateway.WaitForRedisAsync();
            var store = gateway.Services.GetRequiredService<Baton.Gateway.Store.SessionStore>();
            await Eventually.TrueAsync(() => store.IsListening, TimeSpan.FromSeconds(20), "the gateway should hear the others' pin notices");
        }

        using var victim = cluster.Gateway.NewRawClient();
        using var victimElsewhere = other.NewRawClient();
        using var attacker = other.NewRawClient();
        var (planted, _, _) = await SendAsync(victim, HttpMethod.Post, "/inc", cookie: null);
        Assert.NotNull(planted);
        var (_, count, _) = await SendAsync(victimElsewhere, HttpMethod.Post, "/inc", planted);
        Assert.Equal("2", count);
        var owner = await cluster.OwnerOfAsync(planted);
        using var restoredHere = new InstrumentCounter(cluster.Gateway, "baton.restore.count");
        using var restoredThere = new InstrumentCounter(other, "baton.restore.count");

        var storing = HeldTiers.Of(cluster.Gateway).Hold((kind, id) => kind == "checkpoint" && id != IdOf(planted));
        var login = SendAsync(victim, HttpMethod.Post, "/rotate", planted);
        await storing.Reached.WaitAsync(Wait);

        // The other gateway knew the planted id a moment ago, and for it the id's backend is out: a live session would be
        // moved, its last state restored elsewhere.
        await MarkDownAsync(other, owner.InstanceId);
        var (_, seen, answer) = await SendAsync(attacker, HttpMethod.Get, "/whoami", planted);
        Assert.DoesNotContain("ann", seen, StringComparison.Ordinal);
        Assert.True(answer.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"{answer.StatusCode}: {seen}");
        Assert.True(answer.StatusCode != HttpStatusCode.OK || seen == "-", $"the planted id was served as a live session: {seen}");
        Assert.Equal(0, restoredHere.Total + restoredThere.Total);

        storing.Release();
        var (renewed, rotated, _) = await login.WaitAsync(Wait);
        Assert.Equal("rotated", rotated);
        Assert.NotNull(renewed);

        // The new id carries on through either gateway; the planted one is a fresh, empty session through both.
        foreach (var gateway in new[] { other, cluster.Gateway })
        {
            using var client = gateway.NewRawClient();
            Assert.Equal("ann", (await SendAsync(client, HttpMethod.Get, "/whoami", renewed)).Body);
            var (fresh, nobody, _) = await SendAsync(client, HttpMethod.Get, "/whoami", planted);
            Assert.Equal("-", nobody);
            Assert.NotEqual(planted, fresh);
        }
    }

    private static async Task AssertOnlyTheNewIdIsSignedInAsync(TestGateway gateway, string planted, string renewed)
    {
        using var client = gateway.NewRawClient();
        var (_, mine, _) = await SendAsync(client, HttpMethod.Get, "/whoami", renewed);
        Assert.Equal("ann", mine);
        var (fresh, theirs, _) = await SendAsync(client, HttpMethod.Get, "/whoami", planted);
        Assert.Equal("-", theirs);
        Assert.NotNull(fresh);
        Assert.NotEqual(planted, fresh);
    }

    private static string IdOf(string cookie) => cookie[..ProtocolConstants.IdLength];

    /// <summary>One request with the cookie given (or none): the session cookie the answer set (null for none), the body, the answer.</summary>
    private static async Task<(string? Cookie, string Body, HttpResponseMessage Answer)> SendAsync(HttpClient client, HttpMethod method, string path, string? cookie, bool arrival = false)
    {
        using var request = new HttpRequestMessage(method, path);
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", $"{TestGateway.CookieName}={cookie}");
        }

        if (arrival)
        {
            request.Headers.Add("X-Test-Arrival", "1");
        }

        var answer = await client.SendAsync(request);
        var body = await answer.Content.ReadAsStringAsync();
        var set = answer.Headers.TryGetValues("Set-Cookie", out var cookies)
            ? cookies.Select(c => c.Split(';')[0]).LastOrDefault(c => c.StartsWith(TestGateway.CookieName + "=", StringComparison.Ordinal))
            : null;
        var value = set?[(TestGateway.CookieName.Length + 1)..];
        return (string.IsNullOrEmpty(value) ? null : value, body, answer);
    }

    private static async Task MarkDownAsync(TestGateway gateway, string destinationId)
    {
        var services = gateway.Services;
        Assert.True(services.GetRequiredService<IProxyStateLookup>().TryGetCluster("demo", out var cluster));
        var destination = cluster.Destinations[destinationId];
        services.GetRequiredService<IDestinationHealthUpdater>().SetPassive(cluster, destination, DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1));
        await Eventually.TrueAsync(() => !cluster.DestinationsState.AvailableDestinations.Contains(destination), TimeSpan.FromSeconds(10), "the destination should leave the gateway's available destinations");
    }

    /// <summary>
    /// A backend library as it was before it remembered retired ids: a request of an id it rotated away or ended is
    /// answered as a stale copy (409 <c>have=0</c>), which a gateway answers with a restore. Its restores are refused all
    /// the same: what it takes of the planted id then lands on another backend.
    /// </summary>
    private static Action<WebApplicationBuilder> AnsweringRetiredAsStale()
        => BackendHook.Before(async (context, next) =>
        {
            context.Response.OnStarting(() =>
            {
                var response = context.Response;
                if (response.StatusCode == StatusCodes.Status410Gone && response.Headers.Remove(ProtocolConstants.RetiredHeader))
                {
                    response.StatusCode = StatusCodes.Status409Conflict;
                    response.Headers[ProtocolConstants.StaleHeader] = "have=0";
                }

                return Task.CompletedTask;
            });
            await next(context);
        });

    /// <summary>Three library apps (b1..b3) behind one gateway whose store writes the test can hold.</summary>
    private sealed class Cluster : IAsyncDisposable
    {
        private Cluster(List<TestBackend> backends, TestGateway gateway)
        {
            Backends = backends;
            Gateway = gateway;
        }

        public List<TestBackend> Backends { get; }

        public TestGateway Gateway { get; }

        public static async Task<Cluster> StartAsync(bool backendsForgetRetiredIds, string[]? gatewayArgs = null)
        {
            var backends = new List<TestBackend>();
            for (var i = 1; i <= 3; i++)
            {
                backends.Add(await LibraryApp.StartAsync($"b{i}", [], backendsForgetRetiredIds ? AnsweringRetiredAsStale() : null));
            }

            return new Cluster(backends, await TestGateway.StartAsync(backends, gatewayArgs, HeldTiers.Install()));
        }

        /// <summary>The backend the session of <paramref name="cookie"/> is pinned to.</summary>
        public async Task<TestBackend> OwnerOfAsync(string cookie)
        {
            Assert.True(SessionId.TryParse(IdOf(cookie), out var id));
            var pin = await Gateway.Services.GetRequiredService<ISessionPinTable>().FindAsync(id, CancellationToken.None);
            return Backends.Single(b => b.InstanceId == pin!.DestinationId);
        }

        public async ValueTask DisposeAsync()
        {
            HeldTiers.Of(Gateway).ReleaseAll();
            await Gateway.DisposeAsync();
            foreach (var backend in Backends)
            {
                await backend.DisposeAsync();
            }
        }
    }
}
