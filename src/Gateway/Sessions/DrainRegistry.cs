using System.Collections.Concurrent;
using Yarp.ReverseProxy.Model;

namespace Baton.Gateway.Sessions;

/// <summary>
/// Destinations put into drain by an operator: they get no new sessions, and their sessions move (with
/// their state) on their next request. Held in gateway memory: a restarted gateway starts undrained.
/// </summary>
internal sealed class DrainRegistry
{
    private readonly ConcurrentDictionary<(string Cluster, string Destination), DateTimeOffset> _drained = new();

    public bool Drain(string clusterId, string destinationId, DateTimeOffset now) => _drained.TryAdd((clusterId, destinationId), now);

    public bool Undrain(string clusterId, string destinationId) => _drained.TryRemove((clusterId, destinationId), out _);

    public bool IsDrained(string clusterId, string destinationId) => !_drained.IsEmpty && _drained.ContainsKey((clusterId, destinationId));

    public IReadOnlyList<(string Cluster, string Destination, DateTimeOffset Since)> List()
        => _drained.Select(d => (d.Key.Cluster, d.Key.Destination, d.Value)).OrderBy(d => d.Cluster, StringComparer.Ordinal).ThenBy(d => d.Destination, StringComparer.Ordinal).ToList();

    /// <summary>The destinations not in drain; all of them when every one is (draining is never an outage).</summary>
    public IReadOnlyList<DestinationState> Filter(string clusterId, IReadOnlyList<DestinationState> destinations)
    {
        if (_drained.IsEmpty)
        {
            return destinations;
        }

        var open = destinations.Where(d => !IsDrained(clusterId, d.DestinationId)).ToList();
        return open.Count > 0 ? open : destinations;
    }
}
