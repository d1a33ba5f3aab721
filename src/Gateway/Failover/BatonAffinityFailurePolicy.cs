using Baton.Gateway.Sessions;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.SessionAffinity;

namespace Baton.Gateway.Failover;

/// <summary>
/// The <c>"Baton"</c> affinity failure policy: when a session's destination is not available (down,
/// draining, removed), the session is moved — its last checkpoint restored on a healthy destination,
/// once per session — before the request is sent there. 503 with <c>Retry-After</c> when none can take it.
/// </summary>
internal sealed class BatonAffinityFailurePolicy(SessionMover mover) : IAffinityFailurePolicy
{
    public string Name => BatonConstants.AffinityPolicyName;

    public async Task<bool> Handle(HttpContext context, ClusterState cluster, AffinityStatus affinityStatus)
    {
        var session = context.Features.Get<BatonSessionFeature>();
        if (session is null || affinityStatus != AffinityStatus.DestinationNotFound)
        {
            return true;
        }

        var target = await mover.MoveAsync(session, cluster, session.PinnedDestinationId, new HashSet<string>(), "unavailable", context.RequestAborted);
        if (target is null)
        {
            await mover.RefuseNoDestinationAsync(context, cluster);
            return false;
        }

        context.GetReverseProxyFeature().AvailableDestinations = target;
        return true;
    }
}
