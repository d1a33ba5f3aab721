using System.Collections.Concurrent;

namespace Baton.Gateway.Destinations;

/// <summary>
/// The incarnation id each destination's backend process last reported (<c>Baton-Incarnation</c>):
/// restores are bound to it, so a restore can only land on the process it was meant for.
/// </summary>
internal sealed class DestinationIncarnations : IDisposable
{
    private readonly ConcurrentDictionary<(string Cluster, string Destination), string> _known = new();
    private readonly SemaphoreSlim _changed = new(0, 1);

    public string? Get(string clusterId, string destinationId) => _known.TryGetValue((clusterId, destinationId), out var id) ? id : null;

    public void Report(string clusterId, string destinationId, string incarnation)
    {
        var key = (clusterId, destinationId);
        if (_known.TryGetValue(key, out var known) && string.Equals(known, incarnation, StringComparison.Ordinal))
        {
            return;
        }

        _known[key] = incarnation;
        try
        {
            _changed.Release();
        }
        catch (SemaphoreFullException)
        {
            // A change is already signalled.
        }
    }

    public void Dispose() => _changed.Dispose();

    public void Forget(string clusterId, string destinationId) => _known.TryRemove((clusterId, destinationId), out _);

    /// <summary>Completes when some destination reports a process not seen before (or the wait ends).</summary>
    public async Task WaitForChangeAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        using var timer = new CancellationTokenSource(timeout, time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        try
        {
            await _changed.WaitAsync(wait.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }
    }
}
