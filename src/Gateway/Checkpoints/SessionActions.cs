using Baton.Gateway.Diagnostics;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Baton.Protocol;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Transforms;

namespace Baton.Gateway.Checkpoints;

/// <summary>A backend's session action in effect for one response: the old id, and for a rotation the new one and the pin it carries.</summary>
internal sealed class PendingAction(SessionActionKind kind, SessionId old, SessionId? renewed, SessionPin? pin, Task? oldIdEnded)
{
    public SessionActionKind Kind { get; } = kind;

    public SessionId Old { get; } = old;

    /// <summary>The id the session carries on under (rotate); null for an end.</summary>
    public SessionId? Renewed { get; } = renewed;

    /// <summary>The session's pin as it was when the action took effect (rotate).</summary>
    public SessionPin? Pin { get; } = pin;

    /// <summary>The old id's end in the tiers, once it was started.</summary>
    public Task? OldIdEnded { get; set; } = oldIdEnded;
}

/// <summary>
/// Honours a backend's <c>Baton-Session-Action</c> for <see cref="CheckpointCaptureTransform"/>, <b>before</b> anything of
/// the response is stored. From the moment the gateway sees a valid action for a session, its id is dead: never found,
/// loaded, pinned, claimed, restored or served again (a request of it still on its way is refused). <b>Rotate</b> (login)
/// gives the session a new id that carries its pin, epoch and state — the response's own state is stored under the new id
/// alone, so what a login made never lives under an id that may have been planted — and ends the old id in both tiers;
/// <b>end</b> (logout) stores nothing and expires the cookie. Anything that goes wrong fails closed: the session ends
/// under both ids and the client signs in again.
/// </summary>
internal sealed class SessionActions(
    SessionStore store,
    ISessionPinTable pins,
    SessionCookie cookies,
    ProtocolKeys keys,
    TimeProvider time,
    BatonMetrics metrics,
    ILogger logger)
{
    private const string NotRenewed = "The session could not be given a new id, so it was ended: sign in again shortly.";

    /// <summary>
    /// The response's action, in effect at once: a rotation rekeys the session's pin to a new id (and, when the response
    /// carries the state, <paramref name="carriesState"/>, starts ending the old id in the tiers); an end forgets the
    /// session. Pending is null without an action. An invalid action (bad MAC, malformed, another session's id) ends the
    /// session and refuses the response with 502: Refused is then true.
    /// </summary>
    public ValueTask<(bool Refused, PendingAction? Pending)> BeginAsync(ResponseTransformContext context, bool carriesState)
        => context.ProxyResponse!.Headers.TryGetValues(ProtocolConstants.SessionActionHeader, out var values)
            ? new ValueTask<(bool, PendingAction?)>(BeginAsync(context, values, carriesState))
            : ValueTask.FromResult<(bool, PendingAction?)>((false, null));

    private async Task<(bool Refused, PendingAction? Pending)> BeginAsync(ResponseTransformContext context, IEnumerable<string> values, bool carriesState)
    {

        var http = context.HttpContext;
        var session = http.Features.Get<BatonSessionFeature>();
        var header = values.Count() == 1 ? values.First() : null;
        if (session is null || SessionAction.TryParse(header, keys, out var action) != ProtocolVerdict.Valid || action!.SessionId != session.Id.Value)
        {
            metrics.SessionAction("rejected");
            Log.SessionActionRejected(logger, session?.Id.Hash ?? "-");
            if (session is not null)
            {
                pins.Forget(session.Id);
            }

            await RefuseAsync(context, StatusCodes.Status502BadGateway, "The backend sent an invalid session action; the session was ended: sign in again.");
            return (true, null);
        }

        if (action.Action == SessionActionKind.End)
        {
            pins.Forget(session.Id);
            return (false, new PendingAction(SessionActionKind.End, session.Id, renewed: null, pin: null, oldIdEnded: null));
        }

        // The old id dies here, before anything of this response is stored: a request of it on its way finds it gone.
        var pin = await pins.FindAsync(session.Id, context.CancellationToken);
        var renewed = SessionId.New();
        pins.Rekey(session.Id, renewed);
        var pending = new PendingAction(SessionActionKind.Rotate, session.Id, renewed, pin, oldIdEnded: null);
        if (carriesState)
        {
            // The response's state is the session's newest (the backend made it from all it held): nothing stored under
            // the old id is needed, and it ends before the new id takes the state (see EndOldIdAsync).
            pending.OldIdEnded = store.EndAsync(session.Id.Value);
        }

        return (false, pending);
    }

    /// <summary>
    /// Waits until the old id has ended in both tiers (started when the action took effect): from then on no gateway
    /// sharing them can claim, load or restore it, whatever it has heard. Called before the new id takes the state.
    /// </summary>
    public Task EndOldIdAsync(PendingAction pending) => pending.OldIdEnded ??= store.EndAsync(pending.Old.Value);

    /// <summary>
    /// Finishes the action once the response's state, if it carried one, is stored under the new id
    /// (<paramref name="stateCarried"/>): a rotation without one takes the state stored for the old id; the old id ends in
    /// the tiers, and the new cookie is set. An end expires the cookie. False when the rotation failed (closed: refused 503).
    /// </summary>
    public async Task<bool> CompleteAsync(ResponseTransformContext context, PendingAction pending, bool stateCarried)
    {
        var http = context.HttpContext;
        var affinity = AffinityOf(http);
        var now = time.GetUtcNow();
        if (pending.Kind == SessionActionKind.End)
        {
            cookies.Expire(http, affinity, now);
            metrics.SessionAction("end");
            Log.SessionEnded(logger, pending.Old.Hash);
            return true;
        }

        var renewed = pending.Renewed.GetValueOrDefault();
        try
        {
            if (pending.Pin is not { } pin)
            {
                // Gone (ended, expired) before the action took effect: there is nothing to carry.
                throw new StoreUnavailableException("the session was not in the pin table any more");
            }

            if (!stateCarried)
            {
                await CopyAsync(pending, renewed, pin, now, context.CancellationToken);
            }

            await EndOldIdAsync(pending);
            cookies.Issue(http, affinity, renewed, now);
            metrics.SessionAction("rotate");
            Log.SessionRotated(logger, pending.Old.Hash, renewed.Hash);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Fail closed: keeping the old id would keep whatever login just happened on an id that may have been planted.
            await FailAsync(context, pending, StatusCodes.Status503ServiceUnavailable, ex.Message);
            return false;
        }
        finally
        {
            pins.RekeyDone(pending.Old);
        }
    }

    /// <summary>
    /// The action could not be carried through (<paramref name="why"/>: its state invalid, fenced or not storable): the
    /// session ends under both ids, its cookie is expired, and the response is refused with <paramref name="status"/> and
    /// <paramref name="reason"/> (by default: sign in again).
    /// </summary>
    public async Task FailAsync(ResponseTransformContext context, PendingAction pending, int status, string why, string? reason = null)
    {
        Log.SessionActionFailed(logger, pending.Old.Hash, why, status);
        if (pending.Renewed is { } renewed)
        {
            pins.Forget(renewed);
            pins.RekeyDone(pending.Old);
            try
            {
                await EndOldIdAsync(pending);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The tiers remember an end they missed; what is left is said in the log, the answer stays the refusal.
                Log.SessionActionFailed(logger, pending.Old.Hash, "its old id could not be ended: " + ex.Message, status);
            }
        }

        await RefuseAsync(context, status, reason ?? (pending.Kind == SessionActionKind.Rotate ? NotRenewed : "The session's end could not be completed; it was ended all the same: sign in again."));
    }

    /// <summary>
    /// The response's handling ended by an exception (the client went away, a read broke) before the action was
    /// completed or failed: the new id is forgotten and the rename settled, so nothing waits on it and no half-made
    /// session stays; the old id's end goes on in the tiers. Nothing is written: the response is lost already.
    /// </summary>
    public void Abandon(PendingAction pending)
    {
        Log.SessionActionFailed(logger, pending.Old.Hash, "its response was abandoned", StatusCodes.Status499ClientClosedRequest);
        if (pending.Renewed is { } renewed)
        {
            pins.Forget(renewed);
            pins.RekeyDone(pending.Old);
            _ = EndOldIdAsync(pending);
        }
    }

    // The response carried no state: the new id takes the one stored for the old id, read after the rekey, so that no
    // change of the old id stored later is kept under it (such a change is refused: "renewed while this request ran"),
    // and written once the old id has ended.
    private async Task CopyAsync(PendingAction pending, SessionId renewed, SessionPin pin, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var record = await store.GetAsync(pending.Old.Value, pin.Version, cancellationToken, pin.Epoch);
        await EndOldIdAsync(pending);
        if (record is null)
        {
            if (pin.Version > 0)
            {
                throw new StoreUnavailableException("the session's stored state could not be found");
            }

            // Never stored (it has no state): nothing to carry.
            return;
        }

        var millis = now.ToUnixTimeMilliseconds();
        await store.SaveCheckpointAsync(record with { SessionId = renewed.Value, Owner = pin.DestinationId, LastAccess = millis, ExpiresAt = store.ExpiryOf(millis), Epoch = pin.Epoch });
        pins.RecordVersion(renewed, record.Version);
    }

    private async Task RefuseAsync(ResponseTransformContext context, int status, string reason)
    {
        context.SuppressResponseBody = true;
        var http = context.HttpContext;
        await Refusal.WriteAsync(http, status, reason, headers: h => cookies.Expire(h, AffinityOf(h), time.GetUtcNow()));
    }

    private static SessionAffinityConfig AffinityOf(HttpContext http) => http.GetReverseProxyFeature().Cluster.Config.SessionAffinity!;
}
