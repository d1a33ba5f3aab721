using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Baton.Gateway.Failover;

/// <summary>
/// The <c>"Baton"</c> passive health policy: a destination is marked down at once when an attempt fails on
/// its side (<see cref="AttemptFailure"/>), for the cluster's <c>HealthCheck:Passive:ReactivationPeriod</c>.
/// Failures of the client (a stalled or oversized body, a client that went away) or of the gateway's own
/// code never count against a destination, however many there are; nor does any failure take out the last
/// available destination (that is the active health checks' call).
/// </summary>
internal sealed class BatonPassiveHealthPolicy(IDestinationHealthUpdater health) : IPassiveHealthCheckPolicy
{
    /// <summary>How long a failed destination stays out when the cluster names no reactivation period.</summary>
    public static readonly TimeSpan DefaultReactivationPeriod = TimeSpan.FromSeconds(10);

    public string Name => BatonConstants.PassiveHealthPolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        if (context.Features.Get<IForwarderErrorFeature>() is not { } error || error.Error == ForwarderError.NoAvailableDestinations)
        {
            return;
        }

        // A single failed attempt never takes out the last destination left: a backend that really is gone
        // is found by the active health checks, and no run of requests can empty the cluster on its own.
        var available = cluster.DestinationsState.AvailableDestinations;
        if (available.Count == 1 && ReferenceEquals(available[0], destination))
        {
            return;
        }

        if (AttemptFailure.Classify(context, error).Party == FailureParty.Destination)
        {
            var period = cluster.Model.Config.HealthCheck?.Passive?.ReactivationPeriod ?? DefaultReactivationPeriod;
            health.SetPassive(cluster, destination, DestinationHealth.Unhealthy, period);
        }
    }
}
