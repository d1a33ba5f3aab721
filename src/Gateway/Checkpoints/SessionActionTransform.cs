using Baton.Gateway.Diagnostics;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Baton.Protocol;
using Yarp.ReverseProxy.Transforms;

namespace Baton.Gateway.Checkpoints;

/// <summary>
/// Honours a backend's <c>Baton-Session-Action</c> in the same response, after its checkpoint is stored:
/// <b>rotate</b> gives the session a new id that carries its state (pin, epoch and stored checkpoint), and
/// the old id is dead everywhere — so an id planted before login is worthless after it; <b>end</b> drops the
/// session everywhere and expires its cookie, so the old cookie starts a fresh, empty session.
/// </summary>
internal sealed class SessionActionTransform(
    SessionStore store,
    ISessionPinTable pins,
    SessionCookie cookies,
    ProtocolKeys keys,
    TimeProvider time,
    BatonMetrics metrics,
    ILogger logger) : ResponseTransform
{
    public override async ValueTask ApplyAsync(ResponseTransformContext context)
    {
        // Nothing to do without the header, or when the response is already refused (its change not kept).
        if (context.ProxyResponse is not { } response || context.SuppressResponseBody
            || !response.Headers.TryGetValues(ProtocolConstants.SessionActionHeader, out var values))
        {
            return;
        }

        var http = context.HttpContext;
        var session = http.Features.Get<BatonSessionFeature>();
        var affinity = http.GetReverseProxyFeature().Cluster.Config.SessionAffinity!;
        var header = values.Count() == 1 ? values.First() : null;
        if (session is null || SessionAction.TryParse(header, keys, out var action) != ProtocolVerdict.Valid || action!.SessionId != session.Id.Value)
        {
            metrics.SessionAction("rejected");
            Log.SessionActionRejected(logger, session?.Id.Hash ?? "-");
            await EndAndRefuseAsync(context, session, affinity, StatusCodes.Status502BadGateway, "The backend sent an invalid session action; the session was ended: sign in again.");
            return;
        }

        var now = time.GetUtcNow();
        try
        {
            if (action.Action == SessionActionKind.End)
            {
                pins.Forget(session.Id);
                cookies.Expire(http, affinity, now);
                metrics.SessionAction("end");
                Log.SessionEnded(logger, session.Id.Hash);
                return;
            }

            var renewed = SessionId.New();
            var pin = await pins.FindAsync(session.Id, context.CancellationToken);
            var copied = pin is null ? -1 : await CopyAsync(session.Id, renewed, pin, -1, now, context.CancellationToken);

            // From here the old id takes no checkpoint (it is unknown); one another request of the session stored
            // while the copy ran is copied too, so the newest state is the new id's.
            pins.Rekey(session.Id, renewed);
            try
            {
                if (pin is not null)
                {
                    await CopyAsync(session.Id, renewed, pin, copied, now, context.CancellationToken);
                }
            }
            finally
            {
                // The old id ends in the tiers however the copy went (failed, cancelled): left there, another gateway
                // could load it from a planted cookie with this login in it.
                store.End(session.Id.Value);
            }

            cookies.Issue(http, affinity, renewed, now);
            metrics.SessionAction("rotate");
            Log.SessionRotated(logger, session.Id.Hash, renewed.Hash);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Fail closed: keeping the old id would keep whatever login just happened on an id that may have been
            // planted. The session ends; the client signs in again.
            Log.SessionActionFailed(logger, session.Id.Hash, ex.Message);
            await EndAndRefuseAsync(context, session, affinity, StatusCodes.Status503ServiceUnavailable, "The session could not be given a new id, so it was ended: sign in again shortly.");
        }
    }

    /// <summary>Copies the old id's stored state to the new id when it is newer than <paramref name="after"/>; returns the version copied.</summary>
    private async Task<long> CopyAsync(SessionId old, SessionId renewed, SessionPin pin, long after, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (await store.GetAsync(old.Value, pin.Version, cancellationToken, pin.Epoch) is not { } record || record.Version <= after)
        {
            return after;
        }

        var millis = now.ToUnixTimeMilliseconds();
        await store.SaveCheckpointAsync(record with { SessionId = renewed.Value, Owner = pin.DestinationId, LastAccess = millis, ExpiresAt = store.ExpiryOf(millis), Epoch = pin.Epoch });
        return record.Version;
    }

    private async Task EndAndRefuseAsync(ResponseTransformContext context, BatonSessionFeature? session, Yarp.ReverseProxy.Configuration.SessionAffinityConfig affinity, int status, string reason)
    {
        if (session is not null)
        {
            pins.Forget(session.Id);
        }

        context.SuppressResponseBody = true;
        await Refusal.WriteAsync(context.HttpContext, status, reason, headers: http => cookies.Expire(http, affinity, time.GetUtcNow()));
    }
}
