using System.Collections.Concurrent;

namespace Baton.Gateway.Sessions;

/// <summary>
/// The incarnation id each destination's backend process last reported (<c>Baton-Incarnation</c>):
/// restores are bound to it, so a restore can only land on the process it was meant for.
/// </summary>
internal sealed class DestinationIncarnations
{
    private readonly ConcurrentDictionary<(string Cluster, string Destination), string> _known = new();

    public string? Get(string clusterId, string destinationId) => _known.TryGetValue((clusterId, destinationId), out var id) ? id : null;

    public void Report(string clusterId, string destinationId, string incarnation) => _known[(clusterId, destinationId)] = incarnation;

    public void Forget(string clusterId, string destinationId) => _known.TryRemove((clusterId, destinationId), out _);
}
