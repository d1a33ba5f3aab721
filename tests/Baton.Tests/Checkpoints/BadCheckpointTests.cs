using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Baton.Tests.Checkpoints;

/// <summary>
/// A checkpoint that does not check out — signed with another secret, naming another session, over the
/// gateway's state cap, its body not matching its digest, or shorter than it declares — is stored in neither
/// tier, and neither its state nor the app's body reaches the client: 502 with a reason. The session then
/// starts a new epoch, so the backend's memory of the unstored change is never served: the next request is
/// refused as stale there and served from the last stored state, restored. The backend speaks the wire
/// protocol by hand (real Kestrel) so it can send each bad checkpoint; the gateway and Redis are real.
/// </summary>
[Trait("Category", "Functional")]
public sealed class BadCheckpointTests(RedisServer redis) : IClassFixture<RedisServer>, IAsyncLifetime
{
    private const int MaxStateBytes = 1024;
    private const string Refused = "The backend sent an invalid session checkpoint; the change was not saved.";
    private static readonly ProtocolKeys Keys = new(TestGateway.Secret);
    private static readonly ProtocolKeys OtherKeys = new("another-secret-0123456789abcdef0123456789abcdef");
    private readonly string _incarnation = Ids.New();
    private readonly ConcurrentDictionary<string, Copy> _copies = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<SessionGrant> _grants = new();
    private readonly ConcurrentQueue<(RestoreDescriptor Restore, byte[] State)> _restores = new();
    private IReadOnlyCollection<string> _logs = [];
    private TestBackend _backend = null!;
    private TestGateway _gateway = null!;

    public enum Bad
    {
        WrongSecret,
        AnotherSessionsId,
        OverTheStateCap,
        WrongDigest,
        ShorterThanDeclared,
    }

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--urls=http://127.0.0.1:0", "--Logging:LogLevel:Default=Warning"], EnvironmentName = "Production" });
        var app = builder.Build();
        app.MapGet("/health", () => "ok");
        app.Map(ProtocolConstants.RestorePath, (Delegate)RestoreAsync);

        // POST /good changes the session (version +1) and checkpoints it properly; POST /{bad} changes it the same
        // way but sends the checkpoint that mode names. Either way this backend keeps the change in its memory, as
        // a real one does once its response has started.
        app.MapPost("/{mode}", Serve);
        _backend = await TestBackend.StartAppAsync("hand", app);
        var logs = new LogCapture();
        _logs = logs.Lines;
        _gateway = await TestGateway.StartAsync(
            [_backend, _backend, _backend],
            [$"--Baton:Redis={redis.Configuration}", $"--Baton:Checkpoints:MaxStateBytes={MaxStateBytes}"],
            logs.AttachTo);
        await _gateway.WaitForRedisAsync();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _backend.DisposeAsync();
    }

    [Theory]
    [InlineData(Bad.WrongSecret, "BadSignature")]
    [InlineData(Bad.AnotherSessionsId, "another session's id")]
    [InlineData(Bad.OverTheStateCap, "over Baton:Checkpoints:MaxStateBytes")]
    [InlineData(Bad.WrongDigest, "body does not match its digest")]
    [InlineData(Bad.ShorterThanDeclared, "body does not match its digest")]
    public async Task ABadCheckpointAsASessionsFirstChange_IsStoredInNeitherTier_AndAnswered502WithoutStateOrBody(Bad mode, string problem)
    {
        using var rejected = new InstrumentCounter(_gateway, "baton.checkpoint.count", "baton.outcome", "rejected");
        using var client = _gateway.NewClient();

        using var answer = await client.PostAsync(new Uri($"/{mode}", UriKind.Relative), content: null);

        await AssertRefusedAsync(answer);
        var sid = Assert.Single(_grants).SessionId;
        Assert.Null(StoredSessions.FromRedis(redis.Database, sid));
        Assert.Null(StoredSessions.FromJournal(_gateway.JournalPath, sid));
        Assert.Equal(1, rejected.Total);
        AssertLogged(sid, problem);
    }

    [Theory]
    [InlineData(Bad.WrongSecret, "BadSignature")]
    [InlineData(Bad.AnotherSessionsId, "another session's id")]
    [InlineData(Bad.OverTheStateCap, "over Baton:Checkpoints:MaxStateBytes")]
    [InlineData(Bad.WrongDigest, "body does not match its digest")]
    [InlineData(Bad.ShorterThanDeclared, "body does not match its digest")]
    public async Task ABadCheckpointAfterAGoodOne_LeavesTheGoodVersionInBothTiers_AndTheNextRequestIsServedFromItRestored(Bad mode, string problem)
    {
        using var rejected = new InstrumentCounter(_gateway, "baton.checkpoint.count", "baton.outcome", "rejected");
        using var client = _gateway.NewClient();
        using (var first = await client.PostAsync(new Uri("/good", UriKind.Relative), content: null))
        {
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Equal(AppBody("good"), await first.Content.ReadAsStringAsync());
        }

        var sid = SessionCookies.SessionIdOf(client, _gateway);
        var good = StateOf(1, "good");
        var firstEpoch = Assert.Single(_grants).Epoch;
        AssertStored(sid, 1, good);

        using (var bad = await client.PostAsync(new Uri($"/{mode}", UriKind.Relative), content: null))
        {
            await AssertRefusedAsync(bad);
        }

        AssertStored(sid, 1, good);
        Assert.Equal(1, rejected.Total);
        AssertLogged(sid, problem);
        Assert.DoesNotContain(_restores, r => r.Restore.SessionId == sid);

        // The backend still holds the unstored version 2. The session's new epoch makes it refuse the next request
        // as stale; the gateway restores version 1 (the good state) there, in that epoch, and resends.
        using (var next = await client.PostAsync(new Uri("/good", UriKind.Relative), content: null))
        {
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
            Assert.Equal(AppBody("good"), await next.Content.ReadAsStringAsync());
        }

        var restored = Assert.Single(_restores, r => r.Restore.SessionId == sid);
        Assert.Equal(1, restored.Restore.Version);
        Assert.True(restored.Restore.Epoch > firstEpoch, $"restored in epoch {restored.Restore.Epoch}, the session's first was {firstEpoch}");
        Assert.Equal(good, restored.State);
        Assert.Equal(restored.Restore.Epoch, _grants.Last().Epoch);
        AssertStored(sid, 2, StateOf(2, "good"));
        Assert.Equal(1, rejected.Total);
    }

    private static string AppBody(string mode) => $"app-body-{mode}";

    private static byte[] StateOf(long version, string mode)
    {
        var text = $"state-{version}-{mode}";
        return Encoding.UTF8.GetBytes(mode == nameof(Bad.OverTheStateCap) ? text.PadRight(MaxStateBytes + 1, 's') : text);
    }

    private static async Task AssertRefusedAsync(HttpResponseMessage answer)
    {
        Assert.Equal(HttpStatusCode.BadGateway, answer.StatusCode);
        var body = await answer.Content.ReadAsStringAsync();

        // The reason alone: not the state the backend led with, not the app's body after it.
        Assert.Equal(Refused, body);
        Assert.DoesNotContain(answer.Headers.Concat(answer.Content.Headers), h => h.Key.StartsWith(ProtocolConstants.HeaderPrefix, StringComparison.OrdinalIgnoreCase));
    }

    private void AssertStored(string sid, long version, byte[] state)
    {
        var inRedis = StoredSessions.FromRedis(redis.Database, sid);
        var inJournal = StoredSessions.FromJournal(_gateway.JournalPath, sid);
        Assert.NotNull(inRedis);
        Assert.NotNull(inJournal);
        Assert.Equal(version, inRedis.Version);
        Assert.Equal(state, inRedis.State);
        Assert.Equal(version, inJournal.Version);
        Assert.Equal(state, inJournal.State);
    }

    private void AssertLogged(string sid, string problem)
        => Assert.Single(_logs, l => l.Contains("[2001]", StringComparison.Ordinal) && l.Contains(Ids.LogHash(sid), StringComparison.Ordinal) && l.Contains(problem, StringComparison.Ordinal));

    private IResult Serve(HttpContext context, string mode)
    {
        context.Response.Headers[ProtocolConstants.IncarnationHeader] = _incarnation;
        Assert.Equal(ProtocolVerdict.Valid, SessionGrant.TryParse(context.Request.Headers[ProtocolConstants.SessionHeader], Keys, out var grant));
        _grants.Enqueue(grant!);
        var sid = grant!.SessionId;

        // The protocol's staleness rule: no copy while the gateway holds a version, an older copy, or a copy of
        // another epoch is not served.
        var held = _copies.GetValueOrDefault(sid);
        if ((held is null && grant.Version > 0) || (held is not null && (held.Version < grant.Version || held.Epoch != grant.Epoch)))
        {
            context.Response.Headers[ProtocolConstants.StaleHeader] = $"have={held?.Version ?? 0}";
            return Results.Text("stale", statusCode: StatusCodes.Status409Conflict);
        }

        var version = (held?.Version ?? 0) + 1;
        var state = StateOf(version, mode);
        _copies[sid] = new Copy(version, grant.Epoch, state);
        var checkpoint = new CheckpointDescriptor(sid, version, grant.Epoch, state.Length, Ids.Sha256(state), _incarnation);
        checkpoint = mode switch
        {
            nameof(Bad.AnotherSessionsId) => checkpoint with { SessionId = Ids.New() },
            nameof(Bad.WrongDigest) => checkpoint with { Sha256 = Ids.Sha256([.. state, 0]) },
            // Declared one byte past the whole body, with the digest of what the gateway would hold if it took the
            // body it got as the state, padded with zeros: only the length check can catch it.
            nameof(Bad.ShorterThanDeclared) => checkpoint with { Length = state.Length + AppBody(mode).Length + 1, Sha256 = Ids.Sha256([.. state, .. Encoding.UTF8.GetBytes(AppBody(mode)), 0]) },
            _ => checkpoint,
        };
        context.Response.Headers[ProtocolConstants.CheckpointHeader] = checkpoint.Format(mode == nameof(Bad.WrongSecret) ? OtherKeys : Keys);
        return Results.Bytes([.. state, .. Encoding.UTF8.GetBytes(AppBody(mode))], "text/plain");
    }

    private async Task<IResult> RestoreAsync(HttpContext context)
    {
        context.Response.Headers[ProtocolConstants.IncarnationHeader] = _incarnation;
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            return Results.StatusCode(StatusCodes.Status405MethodNotAllowed);
        }

        if (RestoreDescriptor.TryParse(context.Request.Headers[ProtocolConstants.RestoreHeader], Keys, out var restore) != ProtocolVerdict.Valid || restore!.Target != _incarnation)
        {
            return Results.StatusCode(StatusCodes.Status401Unauthorized);
        }

        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body, context.RequestAborted);
        var state = body.ToArray();
        if (state.Length != restore.Length || Ids.Sha256(state) != restore.Sha256)
        {
            return Results.StatusCode(StatusCodes.Status400BadRequest);
        }

        _restores.Enqueue((restore, state));
        _copies[restore.SessionId] = new Copy(restore.Version, restore.Epoch, state);
        return Results.StatusCode(StatusCodes.Status204NoContent);
    }

    private sealed record Copy(long Version, long Epoch, byte[] State);
}
