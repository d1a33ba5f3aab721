using System.Net;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Baton.Tests.Checkpoints;

/// <summary>
/// A checkpoint the store refuses is never answered as a success. The backend here speaks the wire protocol
/// by hand (real Kestrel, real gateway), so it can send what a diverged or replaying backend would.
/// </summary>
[Trait("Category", "Functional")]
public sealed class RefusedCheckpointTests : IAsyncLifetime
{
    private static readonly ProtocolKeys Keys = new(TestGateway.Secret);
    private readonly string _incarnation = Ids.New();
    private TestBackend _backend = null!;
    private TestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--urls=http://127.0.0.1:0", "--Logging:LogLevel:Default=Warning"], EnvironmentName = "Production" });
        var app = builder.Build();
        app.MapGet("/health", () => "ok");

        // POST /next changes the session (version +1); POST /again answers with the version the gateway holds, as
        // made in a later epoch (a new owner's line of changes over an old owner's late one);
        // POST /forged also asks to rotate another session than the request's.
        app.MapPost("/{mode}", (HttpContext context, string mode) =>
        {
            Assert.Equal(ProtocolVerdict.Valid, SessionGrant.TryParse(context.Request.Headers[ProtocolConstants.SessionHeader], Keys, out var grant));
            byte[] state = [(byte)mode.Length, 7];
            var version = mode == "again" ? grant!.Version : grant!.Version + 1;
            if (mode == "forged")
            {
                context.Response.Headers[ProtocolConstants.SessionActionHeader] = new SessionAction(Ids.New(), SessionActionKind.Rotate).Format(Keys);
            }

            context.Response.Headers[ProtocolConstants.IncarnationHeader] = _incarnation;
            var epoch = mode == "again" ? grant.Epoch + 1 : grant.Epoch;
            context.Response.Headers[ProtocolConstants.CheckpointHeader] = new CheckpointDescriptor(grant.SessionId, version, epoch, state.Length, Ids.Sha256(state), _incarnation).Format(Keys);
            return Results.Bytes([.. state, .. "done"u8], "text/plain");
        });
        _backend = await TestBackend.StartAppAsync("hand", app);
        _gateway = await TestGateway.StartAsync([_backend, _backend, _backend]);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _backend.DisposeAsync();
    }

    [Fact]
    public async Task AnInvalidSessionAction_EndsTheSession_SoItsOldIdCarriesNothingOn()
    {
        using var client = _gateway.NewRawClient();
        using var first = await client.PostAsync(new Uri("/next", UriKind.Relative), content: null);
        var cookie = Assert.Single(first.Headers.GetValues("Set-Cookie")).Split(';')[0];

        using var forged = new HttpRequestMessage(HttpMethod.Post, "/forged");
        forged.Headers.Add("Cookie", cookie);
        using var refused = await client.SendAsync(forged);

        Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
        Assert.Contains(refused.Headers.GetValues("Set-Cookie"), c => c.StartsWith($"{TestGateway.CookieName}=;", StringComparison.Ordinal));
        using var after = new HttpRequestMessage(HttpMethod.Post, "/next");
        after.Headers.Add("Cookie", cookie);
        using var fresh = await client.SendAsync(after);
        Assert.Equal(HttpStatusCode.OK, fresh.StatusCode);
        Assert.NotEqual(cookie, Assert.Single(fresh.Headers.GetValues("Set-Cookie")).Split(';')[0]);
    }

    [Fact]
    public async Task ACheckpointNotNewerThanOneAnOlderEpochStored_IsAnswered503NothingChanged_NotAsASuccess()
    {
        using var client = _gateway.NewClient();
        using (var first = await client.PostAsync(new Uri("/next", UriKind.Relative), content: null))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal("done", await first.Content.ReadAsStringAsync());
        }

        using var again = await client.PostAsync(new Uri("/again", UriKind.Relative), content: null);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, again.StatusCode);
        Assert.Contains("nothing was changed", await again.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1, StoredSessions.FromJournal(_gateway.JournalPath, SessionCookies.SessionIdOf(client, _gateway))!.Version);
    }
}
