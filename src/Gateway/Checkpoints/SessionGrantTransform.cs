using Baton.Gateway.Configuration;
using Baton.Gateway.Sessions;
using Baton.Protocol;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Transforms;

namespace Baton.Gateway.Checkpoints;

/// <summary>
/// Tells the backend, authenticated, which session a request belongs to (<c>Baton-Session</c>), and keeps
/// the gateway's own cookie from reaching it: the backend never needs the cookie, only the grant. Offers the backend to
/// send the request's checkpoint as a delta (<c>Baton-Deltas</c>) while the session's chain is short enough.
/// </summary>
internal sealed class SessionGrantTransform(ProtocolKeys keys, ISessionPinTable pins, IOptions<BatonOptions> options, TimeProvider time, string cookieName) : RequestTransform
{
    private readonly long _ttl = (long)options.Value.Sessions.IdleTimeout.TotalMilliseconds;
    private readonly int _maxState = options.Value.Checkpoints.MaxStateBytes;

    public override ValueTask ApplyAsync(RequestTransformContext context)
    {
        var session = context.HttpContext.Features.Get<BatonSessionFeature>();
        if (session is null)
        {
            return default;
        }

        // The session cookie, in any spelling and case, stays at the edge: backends learn the session from the grant.
        ProtocolHeaders.RemoveCookies(context.ProxyRequest.Headers, (name, _) => SessionCookie.IsSessionCookieName(name, cookieName));
        var grant = new SessionGrant(session.Id.Value, session.Version, session.Epoch, _ttl, _maxState, ProtocolTime.Now(time));
        context.ProxyRequest.Headers.TryAddWithoutValidation(ProtocolConstants.SessionHeader, grant.Format(keys));

        // A delta counts from a stored version: none yet, a chain long enough, or a tier that could not take the last
        // delta, and the backend sends the whole state. Decided per attempt: a resent request is offered afresh.
        session.DeltasOffered = session.Version > 0 && pins.TakesDelta(session.Id);
        if (session.DeltasOffered)
        {
            context.ProxyRequest.Headers.TryAddWithoutValidation(ProtocolConstants.DeltasHeader, "1");
        }

        return default;
    }
}
