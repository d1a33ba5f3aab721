using System.Text;
using Baton.Protocol;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Baton.Backend;

/// <summary>
/// Gives every request the session the gateway names (authenticated by the grant header), serialises the
/// session's requests, and leads each response with a checkpoint whenever this backend holds a newer
/// version of the session than the gateway. Requests without a grant (direct access, health probes) get
/// a local session of their own that no gateway checkpoints.
/// </summary>
internal sealed class BatonSessionMiddleware(
    RequestDelegate next,
    BackendSessionStore store,
    BackendIdentity identity,
    RestoreEndpoint restores,
    RetiredSessions retired,
    IOptions<BatonBackendOptions> options,
    TimeProvider time,
    BackendMetrics metrics,
    ILogger<BatonSessionMiddleware> logger)
{
    /// <summary>The cookie of local sessions (requests that did not come through a gateway).</summary>
    public const string LocalCookie = "baton.local";

    public async Task InvokeAsync(HttpContext context)
    {
        context.Response.OnStarting(() =>
        {
            context.Response.Headers[ProtocolConstants.IncarnationHeader] = identity.Incarnation;
            return Task.CompletedTask;
        });

        if (context.Request.Path.Equals(ProtocolConstants.RestorePath, StringComparison.OrdinalIgnoreCase))
        {
            await restores.HandleAsync(context);
            return;
        }

        var limits = options.Value.Backend;
        var scope = context.Request.Headers[ProtocolConstants.SessionHeader] is { Count: > 0 } grantHeader
            ? await GrantedScopeAsync(context, grantHeader.Count == 1 ? grantHeader[0] : null, limits)
            : LocalScope(context, limits);
        if (scope is null)
        {
            return;
        }

        if (scope.Checkpointed && retired.IsRetired(scope.Key))
        {
            // A response of this session carried its rotation or end: the id is dead here, whatever a gateway still
            // thinks of it. Refused distinctly, so no gateway answers this with a restore of the dead id.
            await RefuseRetiredAsync(context, scope.Key);
            return;
        }

        // At MaxSessions a new session is still served (a health probe, a visitor that only reads): it is refused
        // only if it changes, before its first byte.
        var entry = store.GetOrAdd(scope.Key, scope.TtlMilliseconds, transientWhenFull: true)!;

        if (!await entry.Lock.WaitAsync(limits.SessionLockTimeout, context.RequestAborted))
        {
            await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "session_busy", "Another request of this session is still running; retry shortly.");
            return;
        }

        scope.Entry = entry;
        scope.LockHeld = true;
        var innerBody = context.Features.GetRequiredFeature<IHttpResponseBodyFeature>();
        var innerSession = context.Features.Get<ISessionFeature>();
        var innerUpgrade = context.Features.Get<IHttpUpgradeFeature>();
        var innerConnect = context.Features.Get<IHttpExtendedConnectFeature>();
        var innerWebSocket = context.Features.Get<IHttpWebSocketFeature>();
        try
        {
            if (entry.IsRetired)
            {
                // Rotated or ended by another response while this request was on its way or waiting: the id is dead,
                // and what the copy holds (a logged-in state, say) is not this request's to see.
                await RefuseRetiredAsync(context, scope.Key);
                return;
            }

            entry.Touch(store.Now(), scope.TtlMilliseconds);
            if (entry.IsFresh && scope.GatewayVersion == 0)
            {
                entry.Adopt(scope.Epoch);
            }

            if (scope.Checkpointed && (entry.Version < scope.GatewayVersion || entry.Epoch != scope.Epoch))
            {
                // Serving from this memory would hand out an old state: a backend that restarted empty, or
                // one that came back after the session moved away (another epoch). The gateway restores first.
                Log.StaleSessionRefused(logger, Ids.LogHash(scope.Key), entry.Version, scope.GatewayVersion);
                await RefuseAsync(context, StatusCodes.Status409Conflict, "stale", "This backend's copy of the session is older than the gateway's checkpoint.", entry.Version);
                return;
            }

            scope.Session = new BatonSession(scope.Key, entry.Data);
            context.Features.Set<ISessionFeature>(new SessionFeature { Session = scope.Session });
            scope.Control = new BatonSessionControl(scope.Checkpointed);
            context.Features.Set(scope.Control);
            var body = new CheckpointingResponseBody(innerBody, limits.MaxBufferedResponseBytes, streaming => BeforeStartAsync(context, scope, streaming));
            scope.Body = body;
            context.Features.Set<IHttpResponseBodyFeature>(body);

            // A WebSocket's response starts inside the server, past the body feature: run what comes before
            // the first byte (commit, release the session's lock) when the app accepts it, or every other
            // request of the session would wait on the lock for as long as the socket lives.
            if (innerUpgrade is { IsUpgradableRequest: true })
            {
                context.Features.Set<IHttpUpgradeFeature>(new UpgradeGate(innerUpgrade, scope));
            }

            if (innerConnect is { IsExtendedConnect: true })
            {
                context.Features.Set<IHttpExtendedConnectFeature>(new ExtendedConnectGate(innerConnect, scope));
            }

            // With UseWebSockets() ahead of this middleware, apps accept through its feature, which holds the
            // server's own upgrade: gate that one too.
            if (innerWebSocket is { IsWebSocketRequest: true })
            {
                context.Features.Set<IHttpWebSocketFeature>(new WebSocketGate(innerWebSocket, scope));
            }

            try
            {
                await next(context);
            }
            catch (SessionChangeRefusedException)
            {
                // The app accepted a WebSocket after a change this backend refused: the refusal was sent instead.
            }

            await body.FinishAsync(context.RequestAborted);
            if (scope.Session.IsDirty)
            {
                await CommitLateChangeAsync(scope, limits);
            }
        }
        finally
        {
            context.Features.Set(innerBody);
            context.Features.Set(innerSession);
            context.Features.Set(innerUpgrade);
            context.Features.Set(innerConnect);
            context.Features.Set(innerWebSocket);
            ReleaseLock(scope);
            if ((scope.Control?.Requested is not null && scope.ActionSent) || entry.IsRetired)
            {
                // Rotated or ended: the gateway no longer sends this id, and the state lives on (if at all) under
                // the new id, restored from the gateway's store on its first request.
                store.Forget(scope.Key, entry);
            }
            else
            {
                store.ForgetIfUnused(scope.Key, entry);
            }
        }
    }

    /// <summary>Runs once, just before the response's first byte: commits the request's changes and leads the body with the checkpoint.</summary>
    private ValueTask<StartDecision> BeforeStartAsync(HttpContext context, RequestScope scope, bool streaming)
    {
        var entry = scope.Entry!;
        var session = scope.Session!;
        var response = context.Response;
        var limits = options.Value.Backend;
        if (session.IsDirty)
        {
            var data = session.ApplyTo(entry.Data);
            var size = KeyedState.SizeOf(data);
            if (size > scope.MaxStateBytes)
            {
                metrics.ChangeOversized();
                Log.OversizedChangeRolledBack(logger, Ids.LogHash(scope.Key), size, scope.MaxStateBytes);
                return RollBack(scope, response, StatusCodes.Status413PayloadTooLarge, FormattableString.Invariant(
                    $"The session state would be {size} bytes, over its limit of {scope.MaxStateBytes}; the change was not saved and the session is as it was."));
            }

            if (!store.TryAdopt(scope.Key, entry))
            {
                metrics.Refused("memory_full");
                Log.RequestRefused(logger, "memory_full", $"session {Ids.LogHash(scope.Key)}: a new session's first change, with Baton:Backend:MaxSessions held; the change was rolled back");
                return RollBack(scope, response, StatusCodes.Status503ServiceUnavailable, "This backend holds its most sessions (Baton:Backend:MaxSessions); the change was not saved. Retry shortly.");
            }

            if (!store.TryResize(entry, size))
            {
                metrics.Refused("state_memory_full");
                Log.RequestRefused(logger, "state_memory_full", $"session {Ids.LogHash(scope.Key)}: {size} bytes of state would pass Baton:Backend:MaxTotalStateBytes; the change was rolled back");
                return RollBack(scope, response, StatusCodes.Status503ServiceUnavailable, "This backend holds its most session state (Baton:Backend:MaxTotalStateBytes); the change was not saved and the session is as it was. Retry shortly.");
            }

            entry.Commit(data, session.Touched(entry.Data), limits.MaxRemovedKeysPerSession);
            session.Committed(data);
        }

        var version = entry.Version;
        var epoch = entry.Epoch;
        var committed = entry.Data;
        if (scope.Checkpointed && scope.Control?.Requested is { } action)
        {
            response.Headers[ProtocolConstants.SessionActionHeader] = new SessionAction(scope.Key, action).Format(identity.Keys);
            scope.ActionSent = true;

            // Before the lock goes: a request of the old id waiting for it must find the id dead, and so must one that
            // comes later, once this copy is dropped (remembered for the session's idle timeout).
            retired.Retire(scope.Key, scope.TtlMilliseconds);
            entry.IsRetired = true;
        }

        // Read under the lock: the next request's commit (or a restore) moves the tracking on. A session action's state
        // goes under the new id, which holds nothing a delta could apply to: always whole.
        var changes = scope.Checkpointed && version > scope.GatewayVersion && scope.DeltasOffered && limits.SendDeltas
            && scope.GatewayVersion > 0 && scope.Control?.Requested is null
            ? entry.ChangesSince(scope.GatewayVersion)
            : null;
        ReleaseLock(scope);

        if (!scope.Checkpointed || version <= scope.GatewayVersion)
        {
            return ValueTask.FromResult(StartDecision.Proceed(ReadOnlyMemory<byte>.Empty));
        }

        if (scope.Upgrading || !CanHaveBody(context))
        {
            metrics.ChangeDeferred();
            Log.ChangeDeferred(logger, Ids.LogHash(scope.Key), version, scope.Upgrading ? "the response is a WebSocket" : "the response has no body");
            return ValueTask.FromResult(StartDecision.Proceed(ReadOnlyMemory<byte>.Empty));
        }

        // A delta only when it is at most half the whole state (sized before it is made): a larger one saves little, and
        // it lengthens the chain every read of the session folds and that the gateway ends with a whole state soon.
        var wholeSize = KeyedState.SizeOf(committed);
        var delta = changes is null || KeyedState.DeltaSize(changes) > wholeSize / 2 ? null : KeyedState.EncodeDelta(changes);
        byte[] state;
        if (delta is not null && delta.Length <= wholeSize / 2)
        {
            state = delta;
        }
        else
        {
            delta = null;
            state = KeyedState.Encode(committed);
        }

        var checkpoint = delta is null
            ? new CheckpointDescriptor(scope.Key, version, epoch, state.Length, Ids.Sha256(state), identity.Incarnation)
            : new CheckpointDescriptor(scope.Key, version, epoch, state.Length, Ids.Sha256(state), identity.Incarnation, Base: scope.GatewayVersion, StateSize: wholeSize);
        response.Headers[ProtocolConstants.CheckpointHeader] = checkpoint.Format(identity.Keys);
        if (!streaming)
        {
            response.ContentLength = state.Length + scope.Body!.BufferedLength;
        }
        else if (response.ContentLength is { } appLength)
        {
            response.ContentLength = appLength + state.Length;
        }

        metrics.CheckpointSent(state.Length, checkpoint.IsDelta);
        return ValueTask.FromResult(StartDecision.Proceed(state));
    }

    // A change refused before the response's first byte: rolled back, and the app's answer replaced by the reason.
    private static ValueTask<StartDecision> RollBack(RequestScope scope, HttpResponse response, int status, string reason)
    {
        scope.Session!.Discard();
        ReleaseLock(scope);
        var body = Encoding.UTF8.GetBytes(reason);
        Refusal.Prepare(response, status, body.Length);
        return ValueTask.FromResult(StartDecision.Replace(body));
    }

    /// <summary>A change made after the response started: committed now, it rides with the session's next response.</summary>
    private async Task CommitLateChangeAsync(RequestScope scope, BatonBackendLimits limits)
    {
        var entry = scope.Entry!;
        var session = scope.Session!;
        var hash = Ids.LogHash(scope.Key);
        if (!await entry.Lock.WaitAsync(limits.SessionLockTimeout))
        {
            Log.LateChangeLost(logger, hash, "the session stayed busy past Baton:Backend:SessionLockTimeout");
            return;
        }

        try
        {
            if (entry.IsRemoved || entry.Epoch != scope.Epoch)
            {
                // The session was restored here in a later epoch (it moved while this response was sent) or
                // dropped: the copy held now is not the one this request changed, and the gateway fenced the change.
                Log.LateChangeLost(logger, hash, "the session was restored in another epoch, or dropped, before the change could be committed");
                return;
            }

            if (entry.IsRetired)
            {
                // Another response rotated or ended the session meanwhile: its id serves nothing more.
                Log.LateChangeLost(logger, hash, "the session was renewed or ended before the change could be committed");
                return;
            }

            var data = session.ApplyTo(entry.Data);
            var size = KeyedState.SizeOf(data);
            if (size > scope.MaxStateBytes)
            {
                metrics.ChangeOversized();
                Log.LateChangeLost(logger, hash, FormattableString.Invariant($"the state would be {size} bytes, over its limit of {scope.MaxStateBytes}"));
                return;
            }

            if (!store.TryAdopt(scope.Key, entry))
            {
                metrics.Refused("memory_full");
                Log.LateChangeLost(logger, hash, "this backend holds its most sessions (Baton:Backend:MaxSessions)");
                return;
            }

            if (!store.TryResize(entry, size))
            {
                metrics.Refused("state_memory_full");
                Log.LateChangeLost(logger, hash, "this backend holds its most session state (Baton:Backend:MaxTotalStateBytes)");
                return;
            }

            entry.Commit(data, session.Touched(entry.Data), limits.MaxRemovedKeysPerSession);
            session.Committed(data);
            metrics.ChangeDeferred();
            Log.ChangeDeferred(logger, hash, entry.Version, "the app changed the session after the response started");
        }
        finally
        {
            entry.Lock.Release();
        }
    }

    private async Task<RequestScope?> GrantedScopeAsync(HttpContext context, string? header, BatonBackendLimits limits)
    {
        var verdict = SessionGrant.TryParse(header, identity.Keys, out var grant);
        if (verdict != ProtocolVerdict.Valid)
        {
            var (status, reason) = verdict == ProtocolVerdict.BadSignature
                ? (StatusCodes.Status401Unauthorized, "bad_signature")
                : (StatusCodes.Status400BadRequest, verdict == ProtocolVerdict.UnsupportedVersion ? "unsupported_version" : "malformed");
            await RefuseAsync(context, status, "grant_" + reason, $"The {ProtocolConstants.SessionHeader} header is {reason.Replace('_', ' ')}.");
            return null;
        }

        if (!ProtocolTime.IsFresh(grant!.Timestamp, time, limits.ClockSkew))
        {
            await RefuseAsync(context, StatusCodes.Status401Unauthorized, "grant_expired", $"The {ProtocolConstants.SessionHeader} timestamp is outside the clock skew ({limits.ClockSkew}); check the clocks of gateway and backend.");
            return null;
        }

        return new RequestScope(grant.SessionId, grant.Version, grant.Epoch, grant.TtlMilliseconds, Math.Min(grant.MaxStateBytes, limits.MaxStateBytes), Checkpointed: true)
        {
            DeltasOffered = context.Request.Headers[ProtocolConstants.DeltasHeader] is [ "1" ],
        };
    }

    private static RequestScope LocalScope(HttpContext context, BatonBackendLimits limits)
    {
        var id = context.Request.Cookies[LocalCookie];
        if (id is null || !Ids.IsValidId(id))
        {
            id = Ids.New();
            context.Response.Cookies.Append(LocalCookie, id, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Lax, Secure = context.Request.IsHttps, IsEssential = true });
        }

        return new RequestScope("local:" + id, GatewayVersion: 0, Epoch: 0, (long)limits.LocalIdleTimeout.TotalMilliseconds, limits.MaxStateBytes, Checkpointed: false);
    }

    private static bool CanHaveBody(HttpContext context)
        => !HttpMethods.IsHead(context.Request.Method)
           && context.Response.StatusCode is >= 200 and not StatusCodes.Status204NoContent and not StatusCodes.Status304NotModified;

    private static void ReleaseLock(RequestScope scope)
    {
        if (scope.LockHeld)
        {
            scope.LockHeld = false;
            scope.Entry!.Lock.Release();
        }
    }

    // 410 with Baton-Retired naming the session: the gateway answers it without restoring the session anywhere.
    private Task RefuseRetiredAsync(HttpContext context, string sessionId)
        => RefuseAsync(context, StatusCodes.Status410Gone, "retired", $"Session {Ids.LogHash(sessionId)} was renewed or ended (a sign-in or sign-out); this backend serves nothing of it.", retiredSessionId: sessionId);

    private async Task RefuseAsync(HttpContext context, int status, string reason, string detail, long? staleVersion = null, string? retiredSessionId = null)
    {
        metrics.Refused(reason);
        Log.RequestRefused(logger, reason, detail);
        var body = Encoding.UTF8.GetBytes(detail);
        Refusal.Prepare(context.Response, status, body.Length);
        if (staleVersion is { } have)
        {
            context.Response.Headers[ProtocolConstants.StaleHeader] = FormattableString.Invariant($"have={have}");
        }

        if (retiredSessionId is not null)
        {
            context.Response.Headers[ProtocolConstants.RetiredHeader] = "sid=" + retiredSessionId;
        }

        await context.Response.Body.WriteAsync(body, context.RequestAborted);
    }

    /// <summary>What one request works on.</summary>
    private sealed record RequestScope(string Key, long GatewayVersion, long Epoch, long TtlMilliseconds, long MaxStateBytes, bool Checkpointed)
    {
        public SessionEntry? Entry { get; set; }

        public BatonSession? Session { get; set; }

        public CheckpointingResponseBody? Body { get; set; }

        public bool LockHeld { get; set; }

        /// <summary>The gateway takes this request's checkpoint as a delta onto <see cref="GatewayVersion"/>.</summary>
        public bool DeltasOffered { get; init; }

        public BatonSessionControl? Control { get; set; }

        /// <summary>True once the app's rotate or end went out with the response.</summary>
        public bool ActionSent { get; set; }

        /// <summary>True once the app accepted a WebSocket: the response carries no checkpoint.</summary>
        public bool Upgrading { get; set; }
    }

    private sealed class UpgradeGate(IHttpUpgradeFeature inner, RequestScope scope) : IHttpUpgradeFeature
    {
        public bool IsUpgradableRequest => inner.IsUpgradableRequest;

        public async Task<Stream> UpgradeAsync()
        {
            scope.Upgrading = true;
            return await scope.Body!.BeginUpgradeAsync() ? await inner.UpgradeAsync() : throw new SessionChangeRefusedException();
        }
    }

    private sealed class WebSocketGate(IHttpWebSocketFeature inner, RequestScope scope) : IHttpWebSocketFeature
    {
        public bool IsWebSocketRequest => inner.IsWebSocketRequest;

        public async Task<System.Net.WebSockets.WebSocket> AcceptAsync(WebSocketAcceptContext context)
        {
            scope.Upgrading = true;
            return await scope.Body!.BeginUpgradeAsync() ? await inner.AcceptAsync(context) : throw new SessionChangeRefusedException();
        }
    }

    private sealed class ExtendedConnectGate(IHttpExtendedConnectFeature inner, RequestScope scope) : IHttpExtendedConnectFeature
    {
        public bool IsExtendedConnect => inner.IsExtendedConnect;

        public string? Protocol => inner.Protocol;

        public async ValueTask<Stream> AcceptAsync()
        {
            scope.Upgrading = true;
            return await scope.Body!.BeginUpgradeAsync() ? await inner.AcceptAsync() : throw new SessionChangeRefusedException();
        }
    }

    private sealed class SessionFeature : ISessionFeature
    {
        public ISession Session { get; set; } = null!;
    }
}

/// <summary>
/// Thrown to an app that accepts a WebSocket after changing its session in a way this backend refused (too
/// large, memory full): the refusal went out as the response instead, and no socket opens.
/// </summary>
internal sealed class SessionChangeRefusedException()
    : InvalidOperationException("The session change made before accepting this WebSocket was refused; the refusal was sent as the response and no socket was opened.");
