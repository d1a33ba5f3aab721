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
            await RefuseAsync(context, StatusCodes.Status502BadGateway, "The backend sent an invalid session action; the session was left as it was.");
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
            if (await pins.FindAsync(session.Id, context.CancellationToken) is { } pin
                && await store.GetAsync(session.Id.Value, pin.Version, context.CancellationToken) is { } record)
            {
                var millis = now.ToUnixTimeMilliseconds();
                await store.SaveCheckpointAsync(record with { SessionId = renewed.Value, Owner = pin.DestinationId, UpdatedAt = millis, LastAccess = millis, Epoch = pin.Epoch });
            }

            pins.Rekey(session.Id, renewed);
            store.Delete(session.Id.Value);
            cookies.Issue(http, affinity, renewed, now);
            metrics.SessionAction("rotate");
            Log.SessionRotated(logger, session.Id.Hash, renewed.Hash);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Log.SessionActionFailed(logger, session.Id.Hash, ex.Message);
            await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "The session could not be given a new id now; retry shortly.");
        }
    }

    private static async Task RefuseAsync(ResponseTransformContext context, int status, string reason)
    {
        context.SuppressResponseBody = true;
        await Refusal.WriteAsync(context.HttpContext, status, reason);
    }
}
