using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Baton.Tests.Checkpoints;

/// <summary>
/// The gateway's side of deltas, against a backend that speaks the wire protocol by hand (real Kestrel) so it can send
/// each delta it likes; the gateway, Redis and the SQLite journal are real. Deltas are offered only while a session's
/// chain is short (<c>Baton:Checkpoints:MaxDeltaChain</c>, 2 here), stored deltas fold into what a restore carries,
/// and a delta that was not offered, is malformed, makes too large a state or comes with a session action is refused
/// like any bad checkpoint.
/// </summary>
[Trait("Category", "Functional")]
public sealed class DeltaCheckpointGatewayTests(RedisServer redis) : IClassFixture<RedisServer>, IAsyncLifetime
{
    private const int MaxStateBytes = 4096;
    private const string Refused = "The backend sent an invalid session checkpoint; the change was not saved.";
    private static readonly ProtocolKeys Keys = new(TestGateway.Secret);
    private static readonly byte[] Pad = Enumerable.Range(0, 2048).Select(i => (byte)i).ToArray();
    private readonly string _incarnation = Ids.New();
    private readonly ConcurrentDictionary<string, Copy> _copies = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<(SessionGrant Grant, bool Offered, int Sent)> _requests = new();
    private readonly ConcurrentQueue<RestoreDescriptor> _restores = new();
    private IReadOnlyCollection<string> _logs = [];
    private TestBackend _backend = null!;
    private TestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--urls=http://127.0.0.1:0", "--Logging:LogLevel:Default=Warning"], EnvironmentName = "Production" });
        var app = builder.Build();
        app.MapGet("/health", () => "ok");
        app.Map(ProtocolConstants.RestorePath, (Delegate)RestoreAsync);

        // POST /{mode}: sets n to the new version and answers with the checkpoint that mode names (see Serve).
        app.MapPost("/{mode}", Serve);
        _backend = await TestBackend.StartAppAsync("hand", app);
        var logs = new LogCapture();
        _logs = logs.Lines;
        _gateway = await TestGateway.StartAsync(
            [_backend],
            [$"--Baton:Redis={redis.Configuration}", $"--Baton:Checkpoints:MaxStateBytes={MaxStateBytes}", "--Baton:Checkpoints:MaxDeltaChain=2", "--Baton:Journal:LockTimeout=00:00:01"],
            logs.AttachTo);
        await _gateway.WaitForRedisAsync();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _backend.DisposeAsync();
    }

    [Fact]
    public async Task DeltasAreOfferedWhileTheChainIsShort_AndBothTiersFoldThemIntoTheSessionsState()
    {
        using var client = _gateway.NewClient();
        using var deltas = new InstrumentCounter(_gateway, "baton.checkpoint.count", "baton.checkpoint.kind", "delta");

        // Version 1 is whole (nothing is stored to count from); 2 and 3 are deltas; then the chain is two links long
        // and the gateway asks for the whole state, which version 4 is; version 5 is a delta again.
        for (var i = 0; i < 5; i++)
        {
            await PostOkAsync(client, "/delta");
        }

        Assert.Equal([false, true, true, false, true], _requests.Select(r => r.Offered));
        Assert.Equal([false, true, true, false, true], _requests.Select(r => r.Sent == 3));
        Assert.Equal(3, deltas.Total);
        var sid = SessionCookies.SessionIdOf(client, _gateway);
        foreach (var stored in new[] { StoredSessions.FromRedis(redis.Database, sid)!, StoredSessions.FromJournal(_gateway.JournalPath, sid)! })
        {
            Assert.Equal(5, stored.Version);
            Assert.Equal(StateOf(5), stored.State);
        }
    }

    [Fact]
    public async Task TheChainTheTiersHold_BoundsTheOffers_ThoughThisGatewayStoredOnlyPartOfIt()
    {
        var jar = new System.Net.CookieContainer();
        using (var client = _gateway.ClientWithJar(jar))
        {
            await PostOkAsync(client, "/delta");
            await PostOkAsync(client, "/delta");
        }

        // The gateway restarts on the same journal and Redis: it stored none of the session's chain (one link long) in this
        // run, but the tiers say how long it is, so after one more delta the chain is two links and the next change whole.
        var journal = _gateway.JournalPath;
        await _gateway.DisposeAsync();
        _gateway = await TestGateway.StartAsync(
            [_backend],
            [$"--Baton:Redis={redis.Configuration}", $"--Baton:JournalPath={journal}", $"--Baton:Checkpoints:MaxStateBytes={MaxStateBytes}", "--Baton:Checkpoints:MaxDeltaChain=2"]);
        await _gateway.WaitForRedisAsync();
        using (var client = _gateway.ClientWithJar(jar))
        {
            await PostOkAsync(client, "/delta");
            await PostOkAsync(client, "/delta");
            await PostOkAsync(client, "/delta");
        }

        Assert.Equal([false, true, true, false, true], _requests.Select(r => r.Offered));
        var sid = _requests.Last().Grant.SessionId;
        Assert.Equal(StateOf(5), StoredSessions.FromRedis(redis.Database, sid)!.State);
        Assert.Equal(StateOf(5), StoredSessions.FromJournal(_gateway.JournalPath, sid)!.State);
    }

    [Fact]
    public async Task ADeltaRedisCannotApply_IsKeptByTheJournal_AndTheNextChangeGoesWhole_WhichBringsRedisBack()
    {
        using var client = _gateway.NewClient();
        using var unapplicable = new InstrumentCounter(_gateway, "baton.checkpoint.delta_unapplicable", "baton.tier", "redis");
        await PostOkAsync(client, "/delta");
        var sid = SessionCookies.SessionIdOf(client, _gateway);

        // Redis loses the session (evicted, flushed): a delta has nothing to apply onto there.
        Assert.True(await redis.Database.KeyDeleteAsync(StoredSessions.RedisKey(sid)));
        await PostOkAsync(client, "/delta");
        Assert.Equal(1, unapplicable.Total);
        Assert.Null(StoredSessions.FromRedis(redis.Database, sid));
        Assert.Equal(StateOf(2), StoredSessions.FromJournal(_gateway.JournalPath, sid)!.State);

        // The chain is one link long, so a delta would be offered; the tier that refused one wants the whole state.
        await PostOkAsync(client, "/delta");
        Assert.Equal([false, true, false], _requests.Select(r => r.Offered));
        Assert.Equal(StateOf(3), StoredSessions.FromRedis(redis.Database, sid)!.State);
        Assert.Equal(StateOf(3), StoredSessions.FromJournal(_gateway.JournalPath, sid)!.State);

        await PostOkAsync(client, "/delta");
        Assert.True(_requests.Last().Offered);
    }

    [Fact]
    public async Task ADeltaTheFailingJournalMissed_IsHeldByRedis_AndTheNextChangeGoesWhole_WhichBringsTheJournalBack()
    {
        using var client = _gateway.NewClient();
        await PostOkAsync(client, "/delta");
        var sid = SessionCookies.SessionIdOf(client, _gateway);

        // The journal's commits fail (its lock held past Baton:Journal:LockTimeout): Redis alone takes version 2, a delta.
        using (new JournalLock(_gateway.JournalPath))
        {
            await PostOkAsync(client, "/delta");
        }

        Assert.Equal(StateOf(2), StoredSessions.FromRedis(redis.Database, sid)!.State);
        Assert.Equal(1, StoredSessions.FromJournal(_gateway.JournalPath, sid)!.Version);

        // The chain is one link long, so a delta would be offered; the journal is behind, so the next change is asked
        // whole, and the journal holds it.
        await PostOkAsync(client, "/delta");
        Assert.Equal([false, true, false], _requests.Select(r => r.Offered));
        Assert.Equal(StateOf(3), StoredSessions.FromJournal(_gateway.JournalPath, sid)!.State);
        Assert.Equal(StateOf(3), StoredSessions.FromRedis(redis.Database, sid)!.State);
    }

    [Fact]
    public async Task AStoredChain_IsRestoredFolded_WhenTheBackendLostItsCopy()
    {
        using var client = _gateway.NewClient();
        await PostOkAsync(client, "/delta");
        await PostOkAsync(client, "/delta");
        await PostOkAsync(client, "/delta");
        var sid = SessionCookies.SessionIdOf(client, _gateway);

        // The backend forgets the session (a restart): the gateway restores version 3, the chain folded in, and resends.
        _copies.TryRemove(sid, out _);
        await PostOkAsync(client, "/delta");

        var restore = Assert.Single(_restores, r => r.SessionId == sid && r.Version > 0);
        Assert.Equal(3, restore.Version);
        Assert.Equal(Ids.Sha256(StateOf(3)), restore.Sha256);
        Assert.Equal(4, StoredSessions.FromJournal(_gateway.JournalPath, sid)!.Version);
    }

    [Theory]
    [InlineData("unoffered", "a delta this request did not offer to take")]
    [InlineData("malformed", "a malformed delta")]
    [InlineData("oversized", "a delta making 4097 bytes of state")]
    public async Task ABadDelta_IsRefusedLikeABadCheckpoint_AndTheNextRequestIsServedFromTheStoredStateRestored(string mode, string problem)
    {
        using var client = _gateway.NewClient();
        await PostOkAsync(client, "/delta");
        await PostOkAsync(client, "/delta");
        if (mode == "unoffered")
        {
            // A second link makes the chain as long as it may be: the next request is offered none.
            await PostOkAsync(client, "/delta");
        }

        var sid = SessionCookies.SessionIdOf(client, _gateway);
        var kept = _copies[sid].Version;

        using (var bad = await client.PostAsync(new Uri($"/{mode}", UriKind.Relative), content: null))
        {
            Assert.Equal(HttpStatusCode.BadGateway, bad.StatusCode);
            Assert.Equal(Refused, await bad.Content.ReadAsStringAsync());
        }

        Assert.Equal(mode != "unoffered", _requests.Last().Offered);

        Assert.Single(_logs, l => l.Contains("[2001]", StringComparison.Ordinal) && l.Contains(Ids.LogHash(sid), StringComparison.Ordinal) && l.Contains(problem, StringComparison.Ordinal));
        Assert.Equal(kept, StoredSessions.FromJournal(_gateway.JournalPath, sid)!.Version);
        Assert.Equal(kept, StoredSessions.FromRedis(redis.Database, sid)!.Version);

        await PostOkAsync(client, "/delta");
        Assert.Equal(kept, Assert.Single(_restores, r => r.SessionId == sid && r.Version > 0).Version);
        Assert.Equal(StateOf(kept + 1), StoredSessions.FromJournal(_gateway.JournalPath, sid)!.State);
    }

    [Fact]
    public async Task ADeltaWithASessionAction_IsRefused_AndTheSessionEnds()
    {
        using var client = _gateway.NewClient();
        await PostOkAsync(client, "/delta");
        await PostOkAsync(client, "/delta");
        var sid = SessionCookies.SessionIdOf(client, _gateway);

        using (var login = await client.PostAsync(new Uri("/rotate", UriKind.Relative), content: null))
        {
            Assert.Equal(HttpStatusCode.BadGateway, login.StatusCode);
        }

        Assert.Contains(_logs, l => l.Contains("[2001]", StringComparison.Ordinal) && l.Contains(Ids.LogHash(sid), StringComparison.Ordinal) && l.Contains("a delta with a session action", StringComparison.Ordinal));
        await Eventually.TrueAsync(() => Task.FromResult(StoredSessions.FromJournal(_gateway.JournalPath, sid) is null), TimeSpan.FromSeconds(10), "the session should end in the journal");
    }

    // n (the version, 4 bytes) beside a 2 KiB pad: a one-key delta is far smaller than the state.
    private static byte[] StateOf(long version)
        => KeyedState.Encode(new Dictionary<string, byte[]> { ["n"] = BitConverter.GetBytes((int)version), ["pad"] = Pad });

    private static async Task PostOkAsync(HttpClient client, string path)
    {
        using var answer = await client.PostAsync(new Uri(path, UriKind.Relative), content: null);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("app-body", await answer.Content.ReadAsStringAsync());
    }

    private IResult Serve(HttpContext context, string mode)
    {
        context.Response.Headers[ProtocolConstants.IncarnationHeader] = _incarnation;
        Assert.Equal(ProtocolVerdict.Valid, SessionGrant.TryParse(context.Request.Headers[ProtocolConstants.SessionHeader], Keys, out var grant));
        var offered = context.Request.Headers[ProtocolConstants.DeltasHeader] == "1";
        var sid = grant!.SessionId;
        var held = _copies.GetValueOrDefault(sid);
        if ((held is null && grant.Version > 0) || (held is not null && (held.Version < grant.Version || held.Epoch != grant.Epoch)))
        {
            context.Response.Headers[ProtocolConstants.StaleHeader] = $"have={held?.Version ?? 0}";
            return Results.Text("stale", statusCode: StatusCodes.Status409Conflict);
        }

        // Only n changes, so the delta from any earlier version sets n alone.
        var version = (held?.Version ?? 0) + 1;
        var whole = StateOf(version);
        _copies[sid] = new Copy(version, grant.Epoch);
        var asDelta = mode != "delta" || offered;
        var body = asDelta
            ? mode == "malformed" ? [KeyedState.DeltaFormat, 7, 1, (byte)'n'] : KeyedState.EncodeDelta([new("n", BitConverter.GetBytes((int)version))])!
            : whole;
        var size = mode == "oversized" ? MaxStateBytes + 1 : whole.Length;
        var checkpoint = asDelta
            ? new CheckpointDescriptor(sid, version, grant.Epoch, body.Length, Ids.Sha256(body), _incarnation, Base: Math.Max(1, grant.Version), StateSize: size)
            : new CheckpointDescriptor(sid, version, grant.Epoch, body.Length, Ids.Sha256(body), _incarnation);
        context.Response.Headers[ProtocolConstants.CheckpointHeader] = checkpoint.Format(Keys);
        if (mode == "rotate")
        {
            context.Response.Headers[ProtocolConstants.SessionActionHeader] = new SessionAction(sid, SessionActionKind.Rotate).Format(Keys);
        }

        _requests.Enqueue((grant, offered, checkpoint.MessageVersion));
        return Results.Bytes([.. body, .. Encoding.UTF8.GetBytes("app-body")], "text/plain");
    }

    private async Task<IResult> RestoreAsync(HttpContext context)
    {
        context.Response.Headers[ProtocolConstants.IncarnationHeader] = _incarnation;
        if (RestoreDescriptor.TryParse(context.Request.Headers[ProtocolConstants.RestoreHeader], Keys, out var restore) != ProtocolVerdict.Valid || restore!.Target != _incarnation)
        {
            return Results.StatusCode(StatusCodes.Status401Unauthorized);
        }

        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        var state = body.ToArray();
        if (state.Length != restore.Length || Ids.Sha256(state) != restore.Sha256 || !KeyedState.TryDecode(state, out _))
        {
            return Results.StatusCode(StatusCodes.Status400BadRequest);
        }

        _restores.Enqueue(restore);
        _copies[restore.SessionId] = new Copy(restore.Version, restore.Epoch);
        return Results.StatusCode(StatusCodes.Status204NoContent);
    }

    private sealed record Copy(long Version, long Epoch);
}
