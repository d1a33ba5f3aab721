using System.Net;
using System.Text;
using Baton.Backend;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Baton.Tests.Backend;

/// <summary>
/// The backend library's own limits (<c>Baton:Backend:*</c>), met with hand-signed grants and restores: each
/// refusal has its documented status, reason, <c>Retry-After</c> where it is a 503, a count under
/// <c>baton.backend.requests.refused</c> and a warning; the refused request changes nothing, and what the
/// backend already held keeps working.
/// </summary>
[Trait("Category", "Functional")]
public sealed class BackendLimitsTests
{
    private static readonly ProtocolKeys Keys = new(TestGateway.Secret);

    [Fact]
    public async Task ASecondRequestOfAHeldSession_Gets503SessionBusyAfterTheLockWait_AndTheFirstCompletesOnceReleased()
    {
        await using var library = await Library.StartAsync("--Baton:Backend:SessionLockTimeout=00:00:00.300");
        using var busy = library.Refusals("session_busy");
        var gate = library.Backend.Services.GetRequiredService<RequestGate>();
        var session = Ids.New();

        var first = library.SendAsync(HttpMethod.Post, "/hold", session, version: 0);
        await gate.Entered.WaitAsync(TimeSpan.FromSeconds(10));
        using (var second = await library.SendAsync(HttpMethod.Post, "/inc", session, version: 0).WaitAsync(TimeSpan.FromSeconds(10)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, second.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), second.Headers.RetryAfter?.Delta);
            Assert.True(second.Headers.CacheControl?.NoStore, "a refusal is not cached");
            Assert.False(second.Headers.Contains(ProtocolConstants.CheckpointHeader), "a refused request sends no checkpoint");
            Assert.Equal("Another request of this session is still running; retry shortly.", await second.Content.ReadAsStringAsync());
        }

        Assert.Equal(1, busy.Total);
        Assert.Contains(library.Logs.Lines, l => l.Contains("[5001] Request refused (session_busy)", StringComparison.Ordinal));

        gate.Release();
        using var held = await first.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, held.StatusCode);
        var (checkpoint, body) = await Library.ReadAsync(held);
        Assert.Equal("1", body);
        Assert.Equal(1, checkpoint!.Version);

        // The refused request never ran: the session counts the held request alone.
        using var next = await library.SendAsync(HttpMethod.Post, "/inc", session, version: 1);
        Assert.Equal("2", (await Library.ReadAsync(next)).Body);
    }

    [Fact]
    public async Task ThroughTheGateway_ABusySessionsSecondRequest_Gets503WithRetryAfter_AndNoBackendIsTakenForDead()
    {
        const string LockTimeout = "--Baton:Backend:SessionLockTimeout=00:00:00.300";
        var backends = new List<TestBackend>();
        await using var stopped = new AsyncDisposables(backends);
        for (var i = 1; i <= 3; i++)
        {
            backends.Add(await LibraryApp.StartAsync($"b{i}", LockTimeout));
        }

        await using var gateway = await TestGateway.StartAsync(backends);
        var gates = backends.Select(b => b.Services.GetRequiredService<RequestGate>()).ToList();
        using var client = gateway.NewClient();
        using (var counted = await client.PostAsync(new Uri("/inc", UriKind.Relative), content: null))
        {
            Assert.Equal("1", await counted.Content.ReadAsStringAsync());
        }

        var held = client.PostAsync(new Uri("/hold", UriKind.Relative), content: null);
        await Task.WhenAny(gates.Select(g => g.Entered)).WaitAsync(TimeSpan.FromSeconds(10));
        using (var busy = await client.PostAsync(new Uri("/inc", UriKind.Relative), content: null).WaitAsync(TimeSpan.FromSeconds(10)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, busy.StatusCode);
            Assert.NotNull(busy.Headers.RetryAfter);
            Assert.Equal("Another request of this session is still running; retry shortly.", await busy.Content.ReadAsStringAsync());
        }

        gates.ForEach(g => g.Release());
        using (var done = await held.WaitAsync(TimeSpan.FromSeconds(10)))
        {
            Assert.Equal("2", await done.Content.ReadAsStringAsync());
        }

        // A session's own concurrency is no destination failure: every backend stays in service, the session with them.
        Assert.True(gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>().TryGetCluster("demo", out var cluster));
        Assert.Equal(3, cluster.DestinationsState.AvailableDestinations.Count);
        Assert.Equal("2/-", await client.GetStringAsync(new Uri("/read", UriKind.Relative)));
    }

    [Fact]
    public async Task ANewSessionPastMaxSessions_IsServedWhileItOnlyReads_AndGets503MemoryFullOnceItChanges_WhileTheHeldSessionsKeepWorking()
    {
        await using var library = await Library.StartAsync("--Baton:Backend:MaxSessions=2");
        using var full = library.Refusals("memory_full");
        var held = new[] { Ids.New(), Ids.New() };
        foreach (var session in held)
        {
            using var first = await library.SendAsync(HttpMethod.Post, "/inc", session, version: 0);
            Assert.Equal("1", (await Library.ReadAsync(first)).Body);
        }

        // A full backend still answers what changes no session: its own health probe, a session that only reads.
        using (var probe = await library.Client.GetAsync(new Uri("/health", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, probe.StatusCode);
        }

        var refusedSession = Ids.New();
        using (var read = await library.SendAsync(HttpMethod.Get, "/read", refusedSession, version: 0))
        {
            Assert.Equal("0/-", (await Library.ReadAsync(read)).Body);
        }

        Assert.Equal(0, full.Total);
        using (var refused = await library.SendAsync(HttpMethod.Post, "/inc", refusedSession, version: 0))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
            Assert.Contains("Baton:Backend:MaxSessions", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(1, full.Total);
        foreach (var session in held)
        {
            using var again = await library.SendAsync(HttpMethod.Post, "/inc", session, version: 1);
            Assert.Equal("2", (await Library.ReadAsync(again)).Body);
        }

        // Once a held session ends, its room is there for the refused one.
        using (var end = await library.SendAsync(HttpMethod.Post, "/end", held[0], version: 2))
        {
            Assert.Equal("ended", (await Library.ReadAsync(end)).Body);
        }

        using var taken = await library.SendAsync(HttpMethod.Post, "/inc", refusedSession, version: 0);
        Assert.Equal("1", (await Library.ReadAsync(taken)).Body);
    }

    [Fact]
    public async Task ARestoreOfANewSessionPastMaxSessions_IsRefused503_ButOneOfAHeldSessionIsTaken()
    {
        await using var library = await Library.StartAsync("--Baton:Backend:MaxSessions=2");
        using var full = library.Refusals("restore_memory_full");
        var held = new[] { Ids.New(), Ids.New() };
        foreach (var session in held)
        {
            using var restored = await library.RestoreAsync(session, version: 3, State(3));
            Assert.Equal(HttpStatusCode.NoContent, restored.StatusCode);
        }

        var other = Ids.New();
        using (var refused = await library.RestoreAsync(other, version: 5, State(5)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
            Assert.Contains("Baton:Backend:MaxSessions", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(1, full.Total);
        Assert.Contains(library.Logs.Lines, l => l.Contains("[5007] Restore refused (memory_full)", StringComparison.Ordinal));

        // A held session takes a newer restore (it needs no new room), and serves it.
        using (var newer = await library.RestoreAsync(held[0], version: 4, State(40)))
        {
            Assert.Equal(HttpStatusCode.NoContent, newer.StatusCode);
        }

        using var read = await library.SendAsync(HttpMethod.Get, "/read", held[0], version: 4);
        Assert.Equal("40/-", (await Library.ReadAsync(read)).Body);
    }

    [Theory]
    [InlineData(-70, HttpStatusCode.Unauthorized)]
    [InlineData(70, HttpStatusCode.Unauthorized)]
    [InlineData(-50, HttpStatusCode.OK)]
    [InlineData(50, HttpStatusCode.OK)]
    public async Task AGrantIsServedOnlyWithinTheClockSkew_OutsideItIsRefused401WithoutRunningTheApp(int offsetSeconds, HttpStatusCode expected)
    {
        await using var library = await Library.StartAsync("--Baton:Backend:ClockSkew=00:01:00");
        using var expired = library.Refusals("grant_expired");
        var session = Ids.New();
        using (var first = await library.SendAsync(HttpMethod.Post, "/inc", session, version: 0))
        {
            Assert.Equal("1", (await Library.ReadAsync(first)).Body);
        }

        using var skewed = await library.SendAsync(HttpMethod.Post, "/inc", session, version: 1, timestamp: Now() + (offsetSeconds * 1000L));

        Assert.Equal(expected, skewed.StatusCode);
        var (_, body) = await Library.ReadAsync(skewed);
        if (expected == HttpStatusCode.Unauthorized)
        {
            Assert.Contains("outside the clock skew", body, StringComparison.Ordinal);
            Assert.Equal(1, expired.Total);
            Assert.False(skewed.Headers.Contains(ProtocolConstants.CheckpointHeader), "a refused grant sends no checkpoint");
        }
        else
        {
            Assert.Equal("2", body);
            Assert.Equal(0, expired.Total);
        }

        using var read = await library.SendAsync(HttpMethod.Get, "/read", session, version: expected == HttpStatusCode.OK ? 2 : 1);
        Assert.Equal(expected == HttpStatusCode.OK ? "2/-" : "1/-", (await Library.ReadAsync(read)).Body);
    }

    [Fact]
    public async Task ARestoreOverMaxStateBytes_IsRefused413BeforeItsBodyIsTaken_AndTheHeldStateStays()
    {
        await using var library = await Library.StartAsync("--Baton:Backend:MaxStateBytes=4096");
        using var tooLarge = library.Refusals("restore_too_large");
        var session = Ids.New();
        using (var restored = await library.RestoreAsync(session, version: 2, State(7)))
        {
            Assert.Equal(HttpStatusCode.NoContent, restored.StatusCode);
        }

        var big = State(8, padding: 5000);
        using (var refused = await library.RestoreAsync(session, version: 3, big))
        {
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
            Assert.Equal($"The state is {big.Length} bytes, over Baton:Backend:MaxStateBytes (4096).", await refused.Content.ReadAsStringAsync());
        }

        Assert.Equal(1, tooLarge.Total);
        using var read = await library.SendAsync(HttpMethod.Get, "/read", session, version: 2);
        Assert.Equal("7/-", (await Library.ReadAsync(read)).Body);
    }

    [Fact]
    public async Task ARestorePastMaxTotalStateBytes_IsRefused503_AndTheHeldStateStays_WhileOneThatDoesNotGrowIsTaken()
    {
        await using var library = await Library.StartAsync("--Baton:Backend:MaxStateBytes=4096", "--Baton:Backend:MaxTotalStateBytes=7000");
        using var full = library.Refusals("restore_memory_full");
        var first = Ids.New();
        var second = Ids.New();
        using (var a = await library.RestoreAsync(first, version: 1, State(1, padding: 3000)))
        using (var b = await library.RestoreAsync(second, version: 1, State(2, padding: 3000)))
        {
            Assert.Equal(HttpStatusCode.NoContent, a.StatusCode);
            Assert.Equal(HttpStatusCode.NoContent, b.StatusCode);
        }

        // A new session's state would pass the total, and so would a held session's growth.
        using (var third = await library.RestoreAsync(Ids.New(), version: 1, State(3, padding: 3000)))
        using (var grown = await library.RestoreAsync(first, version: 2, State(9, padding: 4000)))
        {
            foreach (var refused in new[] { third, grown })
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
                Assert.Contains("Baton:Backend:MaxTotalStateBytes", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
        }

        Assert.Equal(2, full.Total);
        using (var read = await library.SendAsync(HttpMethod.Get, "/read", first, version: 1))
        {
            Assert.Equal("1/-", (await Library.ReadAsync(read)).Body);
        }

        // A restore that shrinks a held session needs no room and is taken.
        using (var shrunk = await library.RestoreAsync(first, version: 3, State(11)))
        {
            Assert.Equal(HttpStatusCode.NoContent, shrunk.StatusCode);
        }

        using var after = await library.SendAsync(HttpMethod.Get, "/read", first, version: 3);
        Assert.Equal("11/-", (await Library.ReadAsync(after)).Body);
    }

    [Fact]
    public async Task ARestoreReplayedAfterItsSessionEnded_IsRefused409_AndBringsNothingBack()
    {
        await using var library = await Library.StartAsync();
        using var replayed = library.Refusals("restore_replayed");
        var session = Ids.New();
        var state = State(30);
        var header = library.Restore(session, version: 3, state);
        using (var restored = await library.RestoreAsync(header, state))
        {
            Assert.Equal(HttpStatusCode.NoContent, restored.StatusCode);
        }

        using (var end = await library.SendAsync(HttpMethod.Post, "/end", session, version: 3))
        {
            Assert.Equal("ended", (await Library.ReadAsync(end)).Body);
        }

        using (var replay = await library.RestoreAsync(header, state))
        {
            Assert.Equal(HttpStatusCode.Conflict, replay.StatusCode);
            Assert.Equal("This restore was already used.", await replay.Content.ReadAsStringAsync());
        }

        Assert.Equal(1, replayed.Total);

        // The ended session stays ended: even a grant that takes its id for a new session is refused as retired.
        using var read = await library.SendAsync(HttpMethod.Get, "/read", session, version: 0);
        Assert.Equal(HttpStatusCode.Gone, read.StatusCode);
        Assert.Equal("sid=" + session, read.Headers.GetValues(ProtocolConstants.RetiredHeader).Single());
    }

    [Fact]
    public async Task ARestorePastMaxRememberedRestores_IsRefused503_AndInstallsNothing()
    {
        await using var library = await Library.StartAsync("--Baton:Backend:MaxRememberedRestores=2");
        using var full = library.Refusals("restore_replay_guard_full");
        for (var i = 0; i < 2; i++)
        {
            using var taken = await library.RestoreAsync(Ids.New(), version: 1, State(i));
            Assert.Equal(HttpStatusCode.NoContent, taken.StatusCode);
        }

        var session = Ids.New();
        using (var refused = await library.RestoreAsync(session, version: 4, State(44)))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
            Assert.Contains("Baton:Backend:MaxRememberedRestores", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(1, full.Total);

        // Nothing was installed: the session is new to this backend, so a grant naming version 4 finds it stale.
        using var stale = await library.SendAsync(HttpMethod.Get, "/read", session, version: 4);
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        Assert.Equal("have=0", stale.Headers.GetValues(ProtocolConstants.StaleHeader).Single());
    }

    /// <summary>A state of the library's format holding <c>n</c> (as <c>SetInt32</c> writes it) and, optionally, padding bytes.</summary>
    private static byte[] State(int n, int padding = 0)
    {
        var values = new Dictionary<string, byte[]>(StringComparer.Ordinal) { ["n"] = [(byte)(n >> 24), (byte)(n >> 16), (byte)(n >> 8), (byte)n] };
        if (padding > 0)
        {
            values["pad"] = new byte[padding];
        }

        return KeyedState.Encode(values);
    }

    private static long Now() => ProtocolTime.Now(TimeProvider.System);

    /// <summary>One LibraryApp with its warnings captured, spoken to directly as a gateway would.</summary>
    private sealed class Library : IAsyncDisposable
    {
        private Library(TestBackend backend, LogCapture logs, string incarnation)
        {
            Backend = backend;
            Logs = logs;
            Incarnation = incarnation;
            Client = new HttpClient { BaseAddress = backend.Address };
        }

        public TestBackend Backend { get; }

        public LogCapture Logs { get; }

        public string Incarnation { get; }

        public HttpClient Client { get; }

        public static async Task<Library> StartAsync(params string[] args)
        {
            var logs = new LogCapture();
            var backend = await LibraryApp.StartAsync("b1", args, builder => builder.Logging.AddProvider(logs));
            using var probe = new HttpClient { BaseAddress = backend.Address };
            using var health = await probe.GetAsync(new Uri("/_baton/restore", UriKind.Relative));
            return new Library(backend, logs, health.Headers.GetValues(ProtocolConstants.IncarnationHeader).Single());
        }

        /// <summary>The app's body with the checkpoint's state (if any) taken off its front, and the checkpoint.</summary>
        public static async Task<(CheckpointDescriptor? Checkpoint, string Body)> ReadAsync(HttpResponseMessage response)
        {
            var bytes = await response.Content.ReadAsByteArrayAsync();
            if (!response.Headers.TryGetValues(ProtocolConstants.CheckpointHeader, out var values))
            {
                return (null, Encoding.UTF8.GetString(bytes));
            }

            Assert.Equal(ProtocolVerdict.Valid, CheckpointDescriptor.TryParse(values.Single(), Keys, out var checkpoint));
            return (checkpoint, Encoding.UTF8.GetString(bytes, checkpoint!.Length, bytes.Length - checkpoint.Length));
        }

        public InstrumentCounter Refusals(string reason) => new(Backend, "baton.backend.requests.refused", "baton.reason", reason);

        public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string session, long version, long? timestamp = null)
        {
            var request = new HttpRequestMessage(method, path);
            request.Headers.Add(ProtocolConstants.SessionHeader, new SessionGrant(session, version, 0, 60_000, 1 << 20, timestamp ?? Now()).Format(Keys));
            return Client.SendAsync(request);
        }

        public string Restore(string session, long version, byte[] state)
            => new RestoreDescriptor(session, version, 0, state.Length, Ids.Sha256(state), Incarnation, Now(), Ids.New()).Format(Keys);

        public Task<HttpResponseMessage> RestoreAsync(string session, long version, byte[] state) => RestoreAsync(Restore(session, version, state), state);

        public Task<HttpResponseMessage> RestoreAsync(string header, byte[] state)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, ProtocolConstants.RestorePath) { Content = new ByteArrayContent(state) };
            request.Headers.TryAddWithoutValidation(ProtocolConstants.RestoreHeader, header);
            return Client.SendAsync(request);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await Backend.DisposeAsync();
            Logs.Dispose();
        }
    }
}
