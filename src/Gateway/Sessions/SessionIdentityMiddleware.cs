using Baton.Gateway.Diagnostics;
using Baton.Gateway.Store;
using Yarp.ReverseProxy.Model;

namespace Baton.Gateway.Sessions;

/// <summary>
/// Proxy-pipeline step that decides which session a request belongs to, before affinity runs.
/// A cookie is adopted only when the gateway signed it and still tracks the session; anything else —
/// garbage, forged, unknown, expired — gets a fresh id (no session fixation) and is logged and counted.
/// </summary>
internal sealed class SessionIdentityMiddleware(
    RequestDelegate next,
    SessionCookie cookies,
    ISessionPinTable pins,
    BatonMetrics metrics,
    ILogger<SessionIdentityMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var proxy = context.GetReverseProxyFeature();
        var affinity = proxy.Cluster.Config.SessionAffinity;
        if (!BatonConstants.IsBatonAffinity(affinity))
        {
            await next(context);
            return;
        }

        var verdict = cookies.Read(context.Request, affinity, out var id);
        SessionPin? pin;
        try
        {
            pin = verdict == CookieVerdict.Valid ? await pins.FindOrLoadAsync(id, context.RequestAborted) : null;
        }
        catch (StoreUnavailableException ex)
        {
            // A session the tiers may hold but cannot vouch for now is not answered with a fresh one (that would lose it).
            metrics.GatewayError("session_lookup");
            Log.SessionLookupUnavailable(logger, ex.Message);
            await Refusal.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "The session could not be looked up; retry shortly.");
            return;
        }

        BatonSessionFeature session;
        if (pin is not null)
        {
            session = new BatonSessionFeature(pin.Id, pin.DestinationId, pin.Version, pin.Epoch, isNew: false);
        }
        else
        {
            if (verdict != CookieVerdict.Missing)
            {
                var reason = verdict switch
                {
                    CookieVerdict.Malformed => "malformed",
                    CookieVerdict.BadSignature => "bad_signature",
                    CookieVerdict.Ambiguous => "ambiguous",
                    _ => "unknown",
                };
                metrics.CookieRejected(reason);
                Log.SessionCookieRejected(logger, reason);
            }

            // A new session is anonymous (in memory only) until a backend writes state for it: no cap to hit here.
            session = new BatonSessionFeature(SessionId.New(), pinnedDestinationId: null, version: 0, epoch: 0, isNew: true);
        }

        context.Features.Set(session);
        await next(context);
    }
}
