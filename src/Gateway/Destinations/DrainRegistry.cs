using System.Collections.Concurrent;

namespace Baton.Gateway.Destinations;

/// <summary>
/// Destinations put into drain by an operator: they get no new sessions, and their sessions move (with
/// their state) on their next request. Held in gateway memory: a restarted gateway starts undrained.
/// Cluster and destination ids match as YARP matches them, whatever their case.
/// </summary>
internal sealed class DrainRegistry
{
    private readonly ConcurrentDictionary<(string Cluster, string Destination), DateTimeOffset> _drained = new(IdComparer.Instance);

    public bool Drain(string clusterId, string destinationId, DateTimeOffset now) => _drained.TryAdd((clusterId, destinationId), now);

    public bool Undrain(string clusterId, string destinationId) => _drained.TryRemove((clusterId, destinationId), out _);

    public bool IsDrained(string clusterId, string destinationId) => !_drained.IsEmpty && _drained.ContainsKey((clusterId, destinationId));

    public bool IsEmpty => _drained.IsEmpty;

    public IReadOnlyList<(string Cluster, string Destination, DateTimeOffset Since)> List()
        => _drained.Select(d => (d.Key.Cluster, d.Key.Destination, d.Value)).OrderBy(d => d.Cluster, StringComparer.Ordinal).ThenBy(d => d.Destination, StringComparer.Ordinal).ToList();

    private sealed class IdComparer : IEqualityComparer<(string Cluster, string Destination)>
    {
        public static readonly IdComparer Instance = new();

        public bool Equals((string Cluster, string Destination) x, (string Cluster, string Destination) y)
            => StringComparer.OrdinalIgnoreCase.Equals(x.Cluster, y.Cluster) && StringComparer.OrdinalIgnoreCase.Equals(x.Destination, y.Destination);

        public int GetHashCode((string Cluster, string Destination) id)
            => HashCode.Combine(StringComparer.OrdinalIgnoreCase.GetHashCode(id.Cluster), StringComparer.OrdinalIgnoreCase.GetHashCode(id.Destination));
    }
}
