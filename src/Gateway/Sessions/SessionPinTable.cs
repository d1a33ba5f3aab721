using System.Collections.Concurrent;
using Baton.Gateway.Configuration;
using Baton.Gateway.Store;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Sessions;

/// <summary>
/// The pin table: in memory for the hot path, written through to the store for durability. Pins are
/// written when they change; idle timers are written at most every <see cref="TouchInterval"/>, so a
/// restarted gateway may keep a session up to that much longer than its idle timeout, never shorter.
/// </summary>
internal sealed class SessionPinTable(IOptions<BatonOptions> options, TimeProvider timeProvider, IPinPersistence persistence) : ISessionPinTable
{
    private readonly ConcurrentDictionary<SessionId, Entry> _entries = new();
    private readonly long _idleTimeout = (long)options.Value.Sessions.IdleTimeout.TotalMilliseconds;
    private readonly int _maxSessions = options.Value.Sessions.MaxSessions;

    // ConcurrentDictionary.Count takes every lock; keep our own count for the hot path.
    private int _count;

    /// <summary>How stale a session's stored last-access time may get: an eighth of the idle timeout.</summary>
    public long TouchInterval => _idleTimeout / 8;

    public int Count => Volatile.Read(ref _count);

    public bool HasCapacity => Count < _maxSessions;

    public ValueTask<SessionPin?> FindAsync(SessionId id, CancellationToken cancellationToken)
    {
        if (!_entries.TryGetValue(id, out var entry))
        {
            return ValueTask.FromResult<SessionPin?>(null);
        }

        var now = Now();
        if (entry.IsExpired(now, _idleTimeout))
        {
            Expire(id, entry);
            return ValueTask.FromResult<SessionPin?>(null);
        }

        if (entry.Touch(now, TouchInterval))
        {
            persistence.Touch(id.Value, now);
        }

        return ValueTask.FromResult<SessionPin?>(new SessionPin(id, entry.DestinationId, entry.Version, entry.Epoch));
    }

    public async ValueTask<SessionPin> PinAsync(SessionId id, string destinationId, CancellationToken cancellationToken)
        => (await PinWhenAsync(id, destinationId, Task.FromResult(true), cancellationToken))!;

    public async ValueTask<SessionPin?> PinWhenAsync(SessionId id, string destinationId, Task<bool> ready, CancellationToken cancellationToken)
    {
        var now = Now();
        _entries.TryGetValue(id, out var existing);
        var epoch = existing is null ? 0 : existing.Epoch + (string.Equals(existing.DestinationId, destinationId, StringComparison.OrdinalIgnoreCase) ? 0 : 1);
        var persisted = persistence.PinAsync(id.Value, destinationId, epoch, now);
        if (!await ready)
        {
            // The stored pin may now name a destination that does not hold the session. Harmless: the next
            // pin overwrites it, and a gateway that restarted on it meets a backend that does not know the
            // session, which asks for a restore (stale copy).
            await persisted.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return null;
        }

        await persisted;
        var entry = _entries.AddOrUpdate(
            id,
            static (_, state) =>
            {
                Interlocked.Increment(ref state.Table._count);
                return new Entry(state.DestinationId, version: 0, state.Epoch, state.Now);
            },
            static (_, existing, state) =>
            {
                existing.Repin(state.DestinationId, state.Epoch, state.Now);
                return existing;
            },
            (Table: this, DestinationId: destinationId, Epoch: epoch, Now: now));
        return new SessionPin(id, entry.DestinationId, entry.Version, entry.Epoch);
    }

    public void RecordVersion(SessionId id, long version)
    {
        if (_entries.TryGetValue(id, out var entry))
        {
            entry.AdvanceVersion(version);
        }
    }

    public void AdvanceEpoch(SessionId id)
    {
        if (!_entries.TryGetValue(id, out var entry))
        {
            return;
        }

        var epoch = entry.AdvanceEpoch();

        // Best effort: with the store down the new epoch lives in memory, which is what the next request reads.
        _ = persistence.PinAsync(id.Value, entry.DestinationId, epoch, Now())
            .ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    public ValueTask<int> PurgeExpiredAsync(CancellationToken cancellationToken)
    {
        var now = Now();
        var purged = 0;
        foreach (var (id, entry) in _entries)
        {
            if (entry.IsExpired(now, _idleTimeout) && Expire(id, entry))
            {
                purged++;
            }
        }

        return ValueTask.FromResult(purged);
    }

    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        var now = Now();
        foreach (var pin in await persistence.LoadLiveAsync(now - _idleTimeout - TouchInterval, cancellationToken))
        {
            if (pin.Owner is null || !SessionId.TryParse(pin.SessionId, out var id))
            {
                continue;
            }

            // The stored time may lag the real last use by up to TouchInterval: assume the later.
            var lastAccess = Math.Min(now, pin.LastAccess + TouchInterval);
            if (_entries.TryAdd(id, new Entry(pin.Owner, pin.Version, pin.Epoch, lastAccess)))
            {
                Interlocked.Increment(ref _count);
            }
        }
    }

    private bool Expire(SessionId id, Entry entry)
    {
        if (_entries.TryRemove(new KeyValuePair<SessionId, Entry>(id, entry)))
        {
            Interlocked.Decrement(ref _count);
            persistence.Delete(id.Value);
            return true;
        }

        return false;
    }

    public IReadOnlyDictionary<string, int> CountByDestination()
    {
        var now = Now();
        var counts = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in _entries.Values)
        {
            if (!entry.IsExpired(now, _idleTimeout))
            {
                counts[entry.DestinationId] = counts.GetValueOrDefault(entry.DestinationId) + 1;
            }
        }

        return counts;
    }

    private long Now() => timeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    private sealed class Entry(string destinationId, long version, long epoch, long lastAccess)
    {
        private string _destinationId = destinationId;
        private long _version = version;
        private long _epoch = epoch;
        private long _lastAccess = lastAccess;
        private long _lastStoredAccess = lastAccess;

        public string DestinationId => Volatile.Read(ref _destinationId);

        public long Version => Volatile.Read(ref _version);

        public long Epoch => Volatile.Read(ref _epoch);

        public bool IsExpired(long now, long idleTimeout) => now - Volatile.Read(ref _lastAccess) >= idleTimeout;

        /// <summary>Refreshes the idle timer; true when the stored time should be refreshed too.</summary>
        public bool Touch(long now, long touchInterval)
        {
            Volatile.Write(ref _lastAccess, now);
            var stored = Volatile.Read(ref _lastStoredAccess);
            return now - stored >= touchInterval && Interlocked.CompareExchange(ref _lastStoredAccess, now, stored) == stored;
        }

        public void Repin(string destinationId, long epoch, long now)
        {
            Volatile.Write(ref _destinationId, destinationId);
            Volatile.Write(ref _epoch, Math.Max(epoch, Volatile.Read(ref _epoch)));
            Volatile.Write(ref _lastAccess, now);
            Volatile.Write(ref _lastStoredAccess, now);
        }

        public long AdvanceEpoch() => Interlocked.Increment(ref _epoch);

        public void AdvanceVersion(long version)
        {
            var current = Volatile.Read(ref _version);
            while (version > current)
            {
                var seen = Interlocked.CompareExchange(ref _version, version, current);
                if (seen == current)
                {
                    return;
                }

                current = seen;
            }
        }
    }
}
