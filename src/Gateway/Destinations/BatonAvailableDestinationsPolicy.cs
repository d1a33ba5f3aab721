using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Baton.Gateway.Destinations;

/// <summary>
/// The <c>"Baton"</c> available-destinations policy (a cluster's <c>HealthCheck:AvailableDestinationsPolicy</c>):
/// destinations that no enabled health check holds unhealthy, without those in drain. There is no panic
/// mode: with every destination down, none is available, and requests wait (bounded) and get 503 instead
/// of being sent to backends known to be dead. Draining is never an outage: when every available
/// destination drains, they all stay available.
/// </summary>
internal sealed class BatonAvailableDestinationsPolicy(DrainRegistry drains) : IAvailableDestinationsPolicy
{
    public string Name => BatonConstants.AvailableDestinationsPolicyName;

    public IReadOnlyList<DestinationState> GetAvailalableDestinations(ClusterConfig config, IReadOnlyList<DestinationState> allDestinations)
    {
        var active = config.HealthCheck?.Active?.Enabled == true;
        var passive = config.HealthCheck?.Passive?.Enabled == true;
        var healthy = allDestinations
            .Where(d => !(active && d.Health.Active == DestinationHealth.Unhealthy) && !(passive && d.Health.Passive == DestinationHealth.Unhealthy))
            .ToList();
        if (drains.IsEmpty)
        {
            return healthy;
        }

        var open = healthy.Where(d => !drains.IsDrained(config.ClusterId, d.DestinationId)).ToList();
        return open.Count > 0 ? open : healthy;
    }
}
