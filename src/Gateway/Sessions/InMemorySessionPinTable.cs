using System.Collections.Concurrent;
using Baton.Gateway.Configuration;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Sessions;

/// <summary>The pin table in gateway memory: fast, and lost when the gateway stops.</summary>
internal sealed class InMemorySessionPinTable(IOptions<BatonOptions> options, TimeProvider timeProvider) : ISessionPinTable
{
    private readonly ConcurrentDictionary<SessionId, Entry> _entries = new();
    private readonly long _idleTimeoutTicks = options.Value.Sessions.IdleTimeout.Ticks;
    private readonly int _maxSessions = options.Value.Sessions.MaxSessions;

    // ConcurrentDictionary.Count takes every lock; keep our own count for the hot path.
    private int _count;

    public int Count => Volatile.Read(ref _count);

    public bool HasCapacity => Count < _maxSessions;

    public ValueTask<SessionPin?> FindAsync(SessionId id, CancellationToken cancellationToken)
    {
        if (!_entries.TryGetValue(id, out var entry))
        {
            return ValueTask.FromResult<SessionPin?>(null);
        }

        var now = NowTicks();
        if (entry.IsExpired(now, _idleTimeoutTicks))
        {
            Remove(id, entry);
            return ValueTask.FromResult<SessionPin?>(null);
        }

        entry.Touch(now);
        return ValueTask.FromResult<SessionPin?>(new SessionPin(id, entry.DestinationId));
    }

    public ValueTask PinAsync(SessionId id, string destinationId, CancellationToken cancellationToken)
    {
        var now = NowTicks();
        _entries.AddOrUpdate(
            id,
            static (_, state) =>
            {
                Interlocked.Increment(ref state.Table._count);
                return new Entry(state.DestinationId, state.Now);
            },
            static (_, existing, state) =>
            {
                existing.Repin(state.DestinationId, state.Now);
                return existing;
            },
            (Table: this, DestinationId: destinationId, Now: now));
        return ValueTask.CompletedTask;
    }

    public ValueTask<int> PurgeExpiredAsync(CancellationToken cancellationToken)
    {
        var now = NowTicks();
        var purged = 0;
        foreach (var (id, entry) in _entries)
        {
            if (entry.IsExpired(now, _idleTimeoutTicks) && Remove(id, entry))
            {
                purged++;
            }
        }

        return ValueTask.FromResult(purged);
    }

    private bool Remove(SessionId id, Entry entry)
    {
        if (_entries.TryRemove(new KeyValuePair<SessionId, Entry>(id, entry)))
        {
            Interlocked.Decrement(ref _count);
            return true;
        }

        return false;
    }

    private long NowTicks() => timeProvider.GetUtcNow().UtcTicks;

    private sealed class Entry(string destinationId, long lastAccessTicks)
    {
        private string _destinationId = destinationId;
        private long _lastAccessTicks = lastAccessTicks;

        public string DestinationId => Volatile.Read(ref _destinationId);

        public bool IsExpired(long now, long idleTimeoutTicks) => now - Volatile.Read(ref _lastAccessTicks) >= idleTimeoutTicks;

        public void Touch(long now) => Volatile.Write(ref _lastAccessTicks, now);

        public void Repin(string destinationId, long now)
        {
            Volatile.Write(ref _destinationId, destinationId);
            Touch(now);
        }
    }
}
