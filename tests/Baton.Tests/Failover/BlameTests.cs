using System.Net;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Baton.Tests.Failover;

/// <summary>
/// Only a destination's own failure marks it down or moves a session: a client's stalled, oversized or
/// aborted body is that client's problem alone, answered with its own status, and leaves every other
/// session where it was. Real gateway, real backends, bodies sent over bare sockets.
/// </summary>
[Trait("Category", "Functional")]
public sealed class BlameTests : IAsyncLifetime
{
    private const int KestrelBodyLimit = 2_000_000;

    // A JSON body the backend reads as it arrives (POST /cart/items), so a stall holds a streamed request open.
    private const string JsonStart = """{"sku":"stall","qty":1""";

    private readonly List<TestBackend> _backends = [];
    private TestGateway _gateway = null!;

    public enum BadBody
    {
        /// <summary>Within the buffer limit (read whole before forwarding): 300 KB of 600 KB sent, then nothing.</summary>
        StalledWhileKept,

        /// <summary>Over the buffer limit (streamed to the backend): 300 KB of 1.5 MB sent, then nothing.</summary>
        StalledWhileStreamed,

        /// <summary>A Content-Length over Kestrel's limit.</summary>
        TooLarge,

        /// <summary>300 KB of 600 KB sent, then the connection reset.</summary>
        AbortedWhileKept,

        /// <summary>300 KB of 1.5 MB sent, then the connection reset.</summary>
        AbortedWhileStreamed,
    }

    public async Task InitializeAsync()
    {
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        _gateway = await TestGateway.StartAsync(_backends,
        [
            "--Baton:Journal:LockTimeout=00:00:01",
            "--Baton:Limits:RequestBodyIdleTimeout=00:00:01",
            $"--Baton:Limits:MaxRequestBodyBytes={KestrelBodyLimit}",
        ]);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(BadBody.StalledWhileKept, 408, "body_stalled")]
    [InlineData(BadBody.StalledWhileStreamed, 408, "body_stalled")]
    [InlineData(BadBody.TooLarge, 413, "body_too_large")]
    [InlineData(BadBody.AbortedWhileKept, null, null)]
    [InlineData(BadBody.AbortedWhileStreamed, null, null)]
    public async Task ABadBodyOnAPinnedSession_IsAnsweredAsTheClientsFailure_AndMarksNoDestinationDown(BadBody kind, int? expectedStatus, string? reason)
    {
        using var client = _gateway.NewClient();
        var pinned = await client.IncrementAsync();
        using var failovers = new InstrumentCounter(_gateway, "baton.failover.count");
        using var clientFailures = new InstrumentCounter(_gateway, "baton.request.client_failed");
        using var byReason = new InstrumentCounter(_gateway, "baton.request.client_failed", "baton.reason", reason ?? "-");

        var status = await SendAsync(kind, CookieOf(client));

        Assert.Equal(expectedStatus, status);
        if (reason is not null)
        {
            Assert.Equal(1, byReason.Total);
        }

        await Eventually.TrueAsync(() => clientFailures.Total == 1, TimeSpan.FromSeconds(10), "the client's failure should be counted once");
        Assert.Equal(0, failovers.Total);
        AssertNoDestinationDown();
        var after = await client.IncrementAsync();
        Assert.Equal((2, pinned.Instance), (after.Count, after.Instance));
    }

    [Fact]
    public async Task SixBadBodiesAtOnce_LeaveEveryBackendUp_AndOtherSessionsServedWhereTheyArePinned()
    {
        var others = Enumerable.Range(0, 9).Select(_ => _gateway.NewClient()).ToList();
        var pins = new List<string>();
        foreach (var other in others)
        {
            pins.Add((await other.IncrementAsync()).Instance);
        }

        using var failovers = new InstrumentCounter(_gateway, "baton.failover.count");
        using var moves = new InstrumentCounter(_gateway, "baton.session.moved");
        BadBody[] kinds = [BadBody.StalledWhileKept, BadBody.StalledWhileKept, BadBody.StalledWhileStreamed, BadBody.StalledWhileStreamed, BadBody.TooLarge, BadBody.AbortedWhileStreamed];
        var attackers = await Task.WhenAll(kinds.Select(async kind =>
        {
            using var attacker = _gateway.NewClient();
            await attacker.IncrementAsync();
            return CookieOf(attacker);
        }));

        var attacks = Task.WhenAll(kinds.Select((kind, i) => SendAsync(kind, attackers[i])));
        var round = 1;
        while (!attacks.IsCompleted)
        {
            round++;
            for (var i = 0; i < others.Count; i++)
            {
                var answer = await others[i].IncrementAsync();
                Assert.Equal((round, pins[i]), (answer.Count, answer.Instance));
            }
        }

        Assert.Equal([408, 408, 408, 408, 413, null], await attacks);
        Assert.Equal(0, failovers.Total);
        Assert.Equal(0, moves.Total);
        AssertNoDestinationDown();
        foreach (var other in others)
        {
            other.Dispose();
        }
    }

    [Fact]
    public async Task AStoreThatCannotTakeANewSessionsFirstChange_IsTheGatewaysFailure_AndMarksNoDestinationDown()
    {
        using var warm = _gateway.NewClient();
        await warm.IncrementAsync();
        using var failovers = new InstrumentCounter(_gateway, "baton.failover.count");
        using var notStored = new InstrumentCounter(_gateway, "baton.checkpoint.count", "baton.outcome", "failed");

        // The journal is the only tier here: with another writer holding its lock past the lock timeout, nothing can be stored.
        using (new JournalLock(_gateway.JournalPath))
        {
            for (var i = 0; i < 6; i++)
            {
                using var visitor = _gateway.NewClient();
                using var response = await visitor.PostAsync(new Uri("/counter", UriKind.Relative), content: null);
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                Assert.True(response.Headers.RetryAfter is not null, "a 503 carries Retry-After");
            }
        }

        Assert.Equal(6, notStored.Total);
        Assert.Equal(0, failovers.Total);
        AssertNoDestinationDown();
        using var later = _gateway.NewClient();
        Assert.Equal(1, (await later.IncrementAsync()).Count);
    }

    private async Task<int?> SendAsync(BadBody kind, string cookie)
    {
        await using var raw = await RawHttp.ConnectAsync(_gateway.Address);
        var (length, sent) = kind switch
        {
            BadBody.StalledWhileKept or BadBody.AbortedWhileKept => (600_000L, 300_000),
            BadBody.StalledWhileStreamed or BadBody.AbortedWhileStreamed => (1_500_000L, 300_000),
            _ => (KestrelBodyLimit + 1_000_000L, 64_000),
        };
        using var started = new InstrumentCounter(_gateway, "http.server.active_requests", increasesOnly: true);
        await raw.SendPartAsync("POST", "/cart/items", length, sent, JsonStart, cookie);
        if (kind is BadBody.AbortedWhileKept or BadBody.AbortedWhileStreamed)
        {
            // Reset only once the gateway is handling the request: a reset drops whatever it has not read yet.
            await Eventually.TrueAsync(() => started.Total >= 1, TimeSpan.FromSeconds(10), "the gateway should be reading the request");
            raw.Abort();
            return null;
        }

        return await raw.ReadStatusAsync(TimeSpan.FromSeconds(15));
    }

    private string CookieOf(HttpClient client) => CookieJar.Of(client).GetCookieHeader(_gateway.Address);

    private void AssertNoDestinationDown()
    {
        Assert.True(_gateway.Services.GetRequiredService<IProxyStateLookup>().TryGetCluster("demo", out var cluster));
        var down = cluster.Destinations.Values.Where(d => d.Health.Passive == DestinationHealth.Unhealthy).Select(d => d.DestinationId);
        Assert.Empty(down);
    }
}
