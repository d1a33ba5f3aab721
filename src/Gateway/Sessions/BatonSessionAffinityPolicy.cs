using Baton.Gateway.Diagnostics;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.SessionAffinity;

namespace Baton.Gateway.Sessions;

/// <summary>
/// The <c>"Baton"</c> session affinity policy: pins each session (by the gateway's own session id, resolved
/// by <see cref="SessionIdentityMiddleware"/>) to one destination in the pin table. A new session goes
/// where YARP's load balancing sends it and is pinned when its first response passes back.
/// </summary>
internal sealed class BatonSessionAffinityPolicy(
    ISessionPinTable pins,
    SessionCookie cookies,
    BatonMetrics metrics,
    TimeProvider timeProvider,
    ILogger<BatonSessionAffinityPolicy> logger) : ISessionAffinityPolicy
{
    public string Name => BatonConstants.AffinityPolicyName;

    public AffinityResult FindAffinitizedDestinations(HttpContext context, ClusterState cluster, SessionAffinityConfig config, IReadOnlyList<DestinationState> destinations)
    {
        var session = GetSession(context);
        if (session.PinnedDestinationId is not { } pinned)
        {
            return new AffinityResult(null, AffinityStatus.AffinityKeyNotSet);
        }

        for (var i = 0; i < destinations.Count; i++)
        {
            if (string.Equals(destinations[i].DestinationId, pinned, StringComparison.OrdinalIgnoreCase))
            {
                return new AffinityResult(destinations[i], AffinityStatus.OK);
            }
        }

        Log.PinnedDestinationUnavailable(logger, session.Id.Hash, pinned, cluster.ClusterId);
        return new AffinityResult(null, AffinityStatus.DestinationNotFound);
    }

    public void AffinitizeResponse(HttpContext context, ClusterState cluster, SessionAffinityConfig config, DestinationState destination)
        => AffinitizeResponseAsync(context, cluster, config, destination, context.RequestAborted).AsTask().GetAwaiter().GetResult();

    public async ValueTask AffinitizeResponseAsync(HttpContext context, ClusterState cluster, SessionAffinityConfig config, DestinationState destination, CancellationToken cancellationToken)
    {
        var session = GetSession(context);
        var previous = session.PinnedDestinationId;
        if (!string.Equals(previous, destination.DestinationId, StringComparison.OrdinalIgnoreCase))
        {
            SessionPin pin;
            try
            {
                pin = await pins.PinAsync(session.Id, destination.DestinationId, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The store could not take the pin: the gateway's failure, which the failover step must not
                // mistake for the destination's (this runs while the destination's response is read).
                AttemptSignals.GatewayFailed(context, "pin_not_stored");
                throw;
            }

            session.PinnedDestinationId = pin.DestinationId;
            session.Epoch = pin.Epoch;
            if (previous is null)
            {
                Log.SessionPinned(logger, session.Id.Hash, destination.DestinationId);
            }
            else
            {
                metrics.SessionRepinned();
                Log.SessionRepinned(logger, session.Id.Hash, previous, destination.DestinationId);
            }
        }

        if (session.IsNew)
        {
            metrics.SessionCreated();
            cookies.Issue(context, config, session.Id, timeProvider.GetUtcNow());
        }
    }

    private static BatonSessionFeature GetSession(HttpContext context)
        => context.Features.Get<BatonSessionFeature>()
           ?? throw new InvalidOperationException($"The '{BatonConstants.AffinityPolicyName}' affinity policy needs {nameof(SessionIdentityMiddleware)} in the proxy pipeline.");
}
