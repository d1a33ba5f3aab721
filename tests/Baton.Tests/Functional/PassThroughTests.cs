using System.Net;
using System.Security.Cryptography;
using Baton.Protocol;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Functional;

/// <summary>
/// What passes through gateway and backend library untouched on a Baton cluster: HEAD answers (with the app's
/// headers, no body, their change riding with the next response), responses far larger than the library holds
/// back (byte-exact, with the app's Content-Length), and the app's own cookies both ways — while the gateway's
/// session cookie, in any case, stays at the edge.
/// </summary>
[Trait("Category", "Functional")]
public sealed class PassThroughTests : IAsyncLifetime
{
    private const int BigBytes = 5 * 1024 * 1024;
    private readonly LibraryCluster _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    [Fact]
    public async Task AHeadThatChangesTheSession_ArrivesWithTheAppsHeadersAndNoBody_AndItsChangeRidesWithTheNextResponse()
    {
        using var deferred = new Deferred(_cluster.Backends);
        using var client = _cluster.Gateway.NewClient();
        using (var get = await client.GetAsync(new Uri("/head", UriKind.Relative)))
        {
            Assert.Equal("1", await get.Content.ReadAsStringAsync());
        }

        var id = SessionCookies.SessionIdOf(client, _cluster.Gateway);
        Assert.Equal(1, StoredSessions.FromJournal(_cluster.Gateway.JournalPath, id)!.Version);

        using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/head"));

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal("head", head.Headers.GetValues("X-App").Single());
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        Assert.DoesNotContain(head.Headers.Select(h => h.Key).Concat(head.Content.Headers.Select(h => h.Key)), ProtocolConstants.IsProtocolHeader);
        Assert.Equal(1, deferred.Total);
        Assert.Equal(1, StoredSessions.FromJournal(_cluster.Gateway.JournalPath, id)!.Version);

        // The next response carries the HEAD's change to the gateway.
        Assert.Equal("2/-", await client.GetStringAsync(new Uri("/read", UriKind.Relative)));
        var stored = StoredSessions.FromJournal(_cluster.Gateway.JournalPath, id)!;
        Assert.Equal(2, stored.Version);
        Assert.Equal(2, stored.Int32("n"));
    }

    [Theory]
    [InlineData("none", false)]
    [InlineData("none", true)]
    [InlineData("before", false)]
    [InlineData("before", true)]
    [InlineData("after", false)]
    [InlineData("after", true)]
    public async Task AResponseFarOverTheLibrarysBuffer_ArrivesByteExact_AndAChangeBeforeItsFirstByteIsStoredWithIt_OneAfterRidesWithTheNext(string change, bool length)
    {
        using var deferred = new Deferred(_cluster.Backends);
        using var client = _cluster.Gateway.NewClient();
        await client.PostAsync(new Uri("/inc", UriKind.Relative), content: null);
        var id = SessionCookies.SessionIdOf(client, _cluster.Gateway);

        using var response = await client.GetAsync(new Uri($"/big?bytes={BigBytes}&change={change}&length={length}", UriKind.Relative), HttpCompletionOption.ResponseHeadersRead);

        // The app's own Content-Length (the state that led the body taken off it), else chunked.
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(length ? BigBytes : null, response.Content.Headers.ContentLength);
        Assert.Equal(!length, response.Headers.TransferEncodingChunked == true);
        var body = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(BigBytes, body.Length);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(LibraryApp.BigBody(BigBytes))), Convert.ToHexStringLower(SHA256.HashData(body)));
        Assert.DoesNotContain(response.Headers.Select(h => h.Key).Concat(response.Content.Headers.Select(h => h.Key)), ProtocolConstants.IsProtocolHeader);

        var stored = StoredSessions.FromJournal(_cluster.Gateway.JournalPath, id)!;
        Assert.Equal(change == "before" ? 2 : 1, stored.Version);
        Assert.Equal(change == "before" ? "before"u8.ToArray() : null, stored.Values.GetValueOrDefault("late"));
        Assert.Equal(change == "after" ? 1 : 0, deferred.Total);

        var expected = change == "none" ? "-" : change;
        Assert.Equal($"1/{expected}", await client.GetStringAsync(new Uri("/read", UriKind.Relative)));
        Assert.Equal(change == "none" ? 1 : 2, StoredSessions.FromJournal(_cluster.Gateway.JournalPath, id)!.Version);
    }

    [Fact]
    public async Task TheAppsCookiesPassBothWays_WhileTheGatewaysSessionCookieInAnyCaseNeverReachesTheBackend()
    {
        using var client = _cluster.Gateway.NewRawClient();
        using var first = await client.GetAsync(new Uri("/cookies", UriKind.Relative));
        var issued = first.Headers.GetValues("Set-Cookie").ToList();
        Assert.Equal(string.Empty, await first.Content.ReadAsStringAsync());
        Assert.Contains(issued, c => c.StartsWith("app=from-the-app", StringComparison.Ordinal));
        var session = Assert.Single(issued, c => c.StartsWith(TestGateway.CookieName + "=", StringComparison.Ordinal)).Split(';')[0].Split('=', 2)[1];

        using (var inc = new HttpRequestMessage(HttpMethod.Post, "/inc"))
        {
            inc.Headers.Add("Cookie", $"{TestGateway.CookieName}={session}");
            using var counted = await client.SendAsync(inc);
            Assert.Equal("1", await counted.Content.ReadAsStringAsync());
        }

        foreach (var name in new[] { TestGateway.CookieName, TestGateway.CookieName.ToUpperInvariant(), "__Host-" + TestGateway.CookieName, "__HOST-BATON.SID" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/cookies");
            request.Headers.Add("Cookie", $"theme=dark; {name}={session}; app=from-the-app; lang=en");
            using var response = await client.SendAsync(request);

            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("theme=dark; app=from-the-app; lang=en", await response.Content.ReadAsStringAsync());
            Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith("app=from-the-app", StringComparison.Ordinal));
        }

        // The session carried on: its cookie still names it, with its state.
        using var read = new HttpRequestMessage(HttpMethod.Get, "/read");
        read.Headers.Add("Cookie", $"theme=dark; {TestGateway.CookieName}={session}");
        using var kept = await client.SendAsync(read);
        Assert.Equal("1/-", await kept.Content.ReadAsStringAsync());
    }

    /// <summary>Changes the backends deferred to the session's next response (<c>baton.backend.changes.deferred</c>), all three together.</summary>
    private sealed class Deferred(IEnumerable<TestBackend> backends) : IDisposable
    {
        private readonly List<InstrumentCounter> _counters = [.. backends.Select(b => new InstrumentCounter(b, "baton.backend.changes.deferred"))];

        public long Total => _counters.Sum(c => c.Total);

        public void Dispose() => _counters.ForEach(c => c.Dispose());
    }
}
