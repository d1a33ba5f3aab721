using System.Net;
using Baton.Backend;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Backend;

/// <summary>
/// An id the backend rotated away from (login) or ended (logout) stays dead there, with hand-signed grants and
/// restores as a gateway that has not heard of the rotation would send them: every request of it is refused 410
/// with <c>Baton-Retired</c> (never 409 stale, which a gateway answers with a restore), and a restore of it is
/// refused 410, so its last state — the signed-in one — is never installed under it again.
/// </summary>
[Trait("Category", "Functional")]
public sealed class RetiredIdTests
{
    private static readonly ProtocolKeys Keys = new(TestGateway.Secret);

    [Fact]
    public async Task AnIdRotatedAway_IsRefused410AsRetired_ForEveryGrant_AndARestoreOfItsSignedInStateIs410Too()
    {
        await using var library = await Library.StartAsync();
        var planted = Ids.New();
        (await library.SendAsync(HttpMethod.Post, "/inc", planted, version: 0)).Dispose();
        byte[] signedIn;
        using (var login = await library.SendAsync(HttpMethod.Post, "/rotate", planted, version: 1))
        {
            Assert.True(login.Headers.Contains(ProtocolConstants.SessionActionHeader));
            (var checkpoint, signedIn) = await StateOfAsync(login);
            Assert.Equal(2, checkpoint.Version);
        }

        var store = library.Backend.Services.GetRequiredService<BackendSessionStore>();
        await Eventually.TrueAsync(() => store.Count == 0, TimeSpan.FromSeconds(10), "the rotated copy should be dropped once the response has gone");

        // Whatever a gateway believes of the old id (the login stored, or not; a new session), it is served nothing.
        foreach (var version in new long[] { 2, 1, 0 })
        {
            using var old = await library.SendAsync(HttpMethod.Get, "/whoami", planted, version);
            Assert.Equal(HttpStatusCode.Gone, old.StatusCode);
            Assert.Equal("sid=" + planted, old.Headers.GetValues(ProtocolConstants.RetiredHeader).Single());
            Assert.False(old.Headers.Contains(ProtocolConstants.StaleHeader), "a stale answer would make the gateway restore the id");
            Assert.False(old.Headers.Contains(ProtocolConstants.CheckpointHeader));
            Assert.True(old.Headers.CacheControl?.NoStore);
            Assert.StartsWith("text/plain", old.Content.Headers.ContentType?.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("ann", await old.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var restored = await library.RestoreAsync(planted, version: 2, epoch: 1, signedIn))
        {
            Assert.Equal(HttpStatusCode.Gone, restored.StatusCode);
            Assert.Contains("renewed or ended", await restored.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(0, store.Count);
        using (var still = await library.SendAsync(HttpMethod.Get, "/whoami", planted, version: 2, epoch: 1))
        {
            Assert.Equal(HttpStatusCode.Gone, still.StatusCode);
        }

        // The same state under the new id (the gateway's restore of it) is taken and served.
        var renewed = Ids.New();
        using (var carried = await library.RestoreAsync(renewed, version: 2, epoch: 0, signedIn))
        {
            Assert.Equal(HttpStatusCode.NoContent, carried.StatusCode);
        }

        using var mine = await library.SendAsync(HttpMethod.Get, "/whoami", renewed, version: 2);
        Assert.Equal("ann", await mine.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task AnEndedId_IsRefused410AsRetired_AndARestoreOfItIs410()
    {
        await using var library = await Library.StartAsync();
        var session = Ids.New();
        byte[] state;
        using (var changed = await library.SendAsync(HttpMethod.Post, "/inc", session, version: 0))
        {
            (_, state) = await StateOfAsync(changed);
        }

        using (var end = await library.SendAsync(HttpMethod.Post, "/end", session, version: 1))
        {
            Assert.True(end.Headers.Contains(ProtocolConstants.SessionActionHeader));
        }

        using (var restored = await library.RestoreAsync(session, version: 1, epoch: 1, state))
        {
            Assert.Equal(HttpStatusCode.Gone, restored.StatusCode);
        }

        using var old = await library.SendAsync(HttpMethod.Get, "/read", session, version: 1, epoch: 1);
        Assert.Equal(HttpStatusCode.Gone, old.StatusCode);
        Assert.Equal("sid=" + session, old.Headers.GetValues(ProtocolConstants.RetiredHeader).Single());
    }

    [Fact]
    public async Task PastMaxRetiredSessions_TheOldestRetiredIdIsForgotten_AndOnlyItIsTreatedAsUnknown()
    {
        await using var library = await Library.StartAsync("--Baton:Backend:MaxRetiredSessions=2");
        var ids = new[] { Ids.New(), Ids.New(), Ids.New() };
        foreach (var id in ids)
        {
            (await library.SendAsync(HttpMethod.Post, "/inc", id, version: 0)).Dispose();
            (await library.SendAsync(HttpMethod.Post, "/rotate", id, version: 1)).Dispose();
        }

        var retired = library.Backend.Services.GetRequiredService<RetiredSessions>();
        Assert.Equal(2, retired.Count);

        // The first is forgotten: a copy the backend does not hold, as for any unknown session.
        using (var forgotten = await library.SendAsync(HttpMethod.Get, "/read", ids[0], version: 2))
        {
            Assert.Equal(HttpStatusCode.Conflict, forgotten.StatusCode);
            Assert.Equal("have=0", forgotten.Headers.GetValues(ProtocolConstants.StaleHeader).Single());
        }

        foreach (var id in ids[1..])
        {
            using var old = await library.SendAsync(HttpMethod.Get, "/read", id, version: 2);
            Assert.Equal(HttpStatusCode.Gone, old.StatusCode);
        }
    }

    [Fact]
    public async Task AZeroMaxRetiredSessions_StopsTheBackendAtStartup_NamingTheSetting()
    {
        var error = await Assert.ThrowsAsync<Microsoft.Extensions.Options.OptionsValidationException>(async () =>
        {
            await using var backend = await LibraryApp.StartAsync("bad", "--Baton:Backend:MaxRetiredSessions=0");
        });

        Assert.Contains("Baton:Backend:MaxRetiredSessions must be at least 1 (it is 0)", error.Message, StringComparison.Ordinal);
    }

    private static async Task<(CheckpointDescriptor Checkpoint, byte[] State)> StateOfAsync(HttpResponseMessage response)
    {
        Assert.Equal(ProtocolVerdict.Valid, CheckpointDescriptor.TryParse(response.Headers.GetValues(ProtocolConstants.CheckpointHeader).Single(), Keys, out var checkpoint));
        var body = await response.Content.ReadAsByteArrayAsync();
        return (checkpoint!, body[..checkpoint!.Length]);
    }

    private sealed class Library : IAsyncDisposable
    {
        private Library(TestBackend backend, string incarnation)
        {
            Backend = backend;
            Incarnation = incarnation;
            Client = new HttpClient { BaseAddress = backend.Address };
        }

        public TestBackend Backend { get; }

        public string Incarnation { get; }

        public HttpClient Client { get; }

        public static async Task<Library> StartAsync(params string[] args)
        {
            var backend = await LibraryApp.StartAsync("b1", args);
            using var probe = new HttpClient { BaseAddress = backend.Address };
            using var health = await probe.GetAsync(new Uri(ProtocolConstants.RestorePath, UriKind.Relative));
            return new Library(backend, health.Headers.GetValues(ProtocolConstants.IncarnationHeader).Single());
        }

        public Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string session, long version, long epoch = 0)
        {
            var request = new HttpRequestMessage(method, path);
            request.Headers.Add(ProtocolConstants.SessionHeader, new SessionGrant(session, version, epoch, 60_000, 1 << 20, ProtocolTime.Now(TimeProvider.System)).Format(Keys));
            return Client.SendAsync(request);
        }

        public Task<HttpResponseMessage> RestoreAsync(string session, long version, long epoch, byte[] state)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, ProtocolConstants.RestorePath) { Content = new ByteArrayContent(state) };
            request.Headers.TryAddWithoutValidation(ProtocolConstants.RestoreHeader, new RestoreDescriptor(session, version, epoch, state.Length, Ids.Sha256(state), Incarnation, ProtocolTime.Now(TimeProvider.System), Ids.New()).Format(Keys));
            return Client.SendAsync(request);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await Backend.DisposeAsync();
        }
    }
}
