namespace Baton.Gateway.Diagnostics;

/// <summary>A session moved from one destination to another.</summary>
/// <param name="SessionHash">The session id, hashed as in the logs.</param>
/// <param name="Reason">Why: the forwarder error (ConnectionRefused, RequestTimedOut…), stale, or unavailable (down or drained).</param>
internal sealed record FailoverEvent(DateTimeOffset At, string Cluster, string SessionHash, string From, string To, string Reason);

/// <summary>The most recent session moves, for the status page.</summary>
internal sealed class FailoverEvents
{
    /// <summary>How many moves are kept.</summary>
    public const int Capacity = 100;

    private readonly Lock _lock = new();
    private readonly Queue<FailoverEvent> _events = new();

    public void Add(FailoverEvent move)
    {
        lock (_lock)
        {
            if (_events.Count == Capacity)
            {
                _events.Dequeue();
            }

            _events.Enqueue(move);
        }
    }

    /// <summary>Newest first.</summary>
    public IReadOnlyList<FailoverEvent> Recent()
    {
        lock (_lock)
        {
            return [.. _events.Reverse()];
        }
    }
}
