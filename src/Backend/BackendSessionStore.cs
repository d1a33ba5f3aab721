using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Baton.Backend;

/// <summary>One session held in this backend's memory.</summary>
internal sealed class SessionEntry(long ttlMilliseconds, long now)
{
    private long _lastAccess = now;
    private long _ttl = ttlMilliseconds;

    /// <summary>Held by the request that is working on the session, until its checkpoint is taken.</summary>
    public SemaphoreSlim Lock { get; } = new(1, 1);

    /// <summary>The committed contents; replaced whole on every commit, never changed in place.</summary>
    public IReadOnlyDictionary<string, byte[]> Data { get; private set; } = new Dictionary<string, byte[]>(StringComparer.Ordinal);

    /// <summary>The version of <see cref="Data"/>: 0 for a session never changed, +1 per commit.</summary>
    public long Version { get; private set; }

    /// <summary>The session's move count when this copy was made current here (by a restore or its first grant).</summary>
    public long Epoch { get; private set; }

    /// <summary>True until the first request or restore has used this entry.</summary>
    public bool IsFresh { get; private set; } = true;

    /// <summary>Bytes of <see cref="Data"/> serialized, as counted in the store's total (changed under a lock on the entry).</summary>
    public long StateBytes { get; set; }

    /// <summary>True once the store dropped the entry: a request still holding it counts nothing more.</summary>
    public bool IsRemoved { get; set; }

    /// <summary>
    /// True once a response carried the session's rotation or end: the id is dead here. Requests still waiting for
    /// it are served nothing of it, and the entry is dropped once none holds it.
    /// </summary>
    public bool IsRetired { get; set; }

    /// <summary>
    /// True for an entry made outside the store because it was full: it serves one request that reads nothing
    /// stored, and takes a place only if that request changes it (<see cref="BackendSessionStore.TryAdopt"/>).
    /// </summary>
    public bool IsTransient { get; set; }

    // For deltas: the version each key was last set at and each removed key's removal, since TrackedFrom (a copy
    // installed then, or 0 for one that began empty here); ForgottenUpTo is the newest removal no longer remembered.
    private readonly Dictionary<string, long> _setAt = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _removedAt = new(StringComparer.Ordinal);
    private long _trackedFrom;
    private long _forgottenUpTo;

    /// <summary>
    /// Commits <paramref name="data"/> (<see cref="Data"/> with <paramref name="touched"/> keys set or removed) as the next
    /// version; remembers at most <paramref name="maxRemoved"/> removed keys.
    /// </summary>
    public void Commit(IReadOnlyDictionary<string, byte[]> data, IEnumerable<string> touched, int maxRemoved)
    {
        var version = Version + 1;
        foreach (var key in touched)
        {
            if (data.ContainsKey(key))
            {
                _setAt[key] = version;
                _removedAt.Remove(key);
            }
            else if (Data.ContainsKey(key))
            {
                _setAt.Remove(key);
                _removedAt[key] = version;
            }
        }

        while (_removedAt.Count > maxRemoved)
        {
            var oldest = _removedAt.MinBy(removed => removed.Value);
            _removedAt.Remove(oldest.Key);
            _forgottenUpTo = Math.Max(_forgottenUpTo, oldest.Value);
        }

        Data = data;
        Version = version;
    }

    /// <summary>
    /// The keys set (with their values) and removed (null) after <paramref name="since"/>; null when this copy cannot name
    /// them all (it was installed later, or a removal since then was forgotten). Only under <see cref="Lock"/>: a commit
    /// or an install changes what it reads.
    /// </summary>
    public List<KeyValuePair<string, byte[]?>>? ChangesSince(long since)
    {
        if (since < _trackedFrom || since < _forgottenUpTo)
        {
            return null;
        }

        var changes = new List<KeyValuePair<string, byte[]?>>();
        foreach (var (key, at) in _setAt)
        {
            if (at > since)
            {
                changes.Add(new(key, Data[key]));
            }
        }

        foreach (var (key, at) in _removedAt)
        {
            if (at > since)
            {
                changes.Add(new(key, null));
            }
        }

        return changes;
    }

    public void Install(IReadOnlyDictionary<string, byte[]> data, long version, long epoch)
    {
        Data = data;
        Version = version;
        Epoch = epoch;
        IsFresh = false;
        _setAt.Clear();
        _removedAt.Clear();
        _trackedFrom = version;
        _forgottenUpTo = 0;
    }

    /// <summary>A fresh, empty entry joins the epoch of the grant that created it.</summary>
    public void Adopt(long epoch)
    {
        Epoch = epoch;
        IsFresh = false;
    }

    public void Touch(long now, long ttlMilliseconds)
    {
        Volatile.Write(ref _ttl, ttlMilliseconds);
        Volatile.Write(ref _lastAccess, now);
    }

    public bool IsExpired(long now) => now - Volatile.Read(ref _lastAccess) >= Volatile.Read(ref _ttl);
}

/// <summary>The sessions this backend process holds, by the gateway's session id.</summary>
internal sealed class BackendSessionStore(IOptions<BatonBackendOptions> options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, SessionEntry> _sessions = new(StringComparer.Ordinal);
    private readonly int _maxSessions = options.Value.Backend.MaxSessions;
    private readonly long _maxStateBytes = options.Value.Backend.MaxTotalStateBytes;
    private int _count;
    private long _stateBytes;

    public int Count => Volatile.Read(ref _count);

    /// <summary>Bytes of state the sessions in memory hold together (serialized).</summary>
    public long StateBytes => Interlocked.Read(ref _stateBytes);

    /// <summary>
    /// Counts the entry's state at a new size, before it is committed or installed: false, and nothing counted,
    /// when growth would pass <c>Baton:Backend:MaxTotalStateBytes</c>. An entry the store already dropped (a
    /// request that still held it) counts nothing: its state is in no session any more.
    /// </summary>
    public bool TryResize(SessionEntry entry, long bytes)
    {
        lock (entry)
        {
            if (entry.IsRemoved)
            {
                return true;
            }

            var growth = bytes - entry.StateBytes;
            if (growth > 0 && Interlocked.Add(ref _stateBytes, growth) > _maxStateBytes)
            {
                Interlocked.Add(ref _stateBytes, -growth);
                return false;
            }

            if (growth <= 0)
            {
                Interlocked.Add(ref _stateBytes, growth);
            }

            entry.StateBytes = bytes;
            return true;
        }
    }

    /// <summary>The session's entry, creating it when absent; null when memory is full.</summary>
    /// <summary>
    /// The session's entry, added when new; at <c>MaxSessions</c> a new session gets null, or with
    /// <paramref name="transientWhenFull"/> an entry outside the store that takes a place only once changed.
    /// </summary>
    public SessionEntry? GetOrAdd(string sessionId, long ttlMilliseconds, bool transientWhenFull = false)
    {
        var now = Now();
        while (true)
        {
            if (_sessions.TryGetValue(sessionId, out var entry))
            {
                if (!entry.IsExpired(now))
                {
                    return entry;
                }

                Remove(sessionId, entry);
                continue;
            }

            if (Count >= _maxSessions)
            {
                return transientWhenFull ? new SessionEntry(ttlMilliseconds, now) { IsTransient = true } : null;
            }

            var fresh = new SessionEntry(ttlMilliseconds, now);
            if (_sessions.TryAdd(sessionId, fresh))
            {
                Interlocked.Increment(ref _count);
                return fresh;
            }
        }
    }

    /// <summary>Drops the entry, whatever it holds, once nobody holds it.</summary>
    /// <summary>
    /// Gives a transient entry its place, now that its session changes; false when the store is still at
    /// <c>MaxSessions</c> (or another request of the session took the place first). Other entries have one.
    /// </summary>
    public bool TryAdopt(string sessionId, SessionEntry entry)
    {
        if (!entry.IsTransient)
        {
            return true;
        }

        if (Interlocked.Increment(ref _count) > _maxSessions)
        {
            Interlocked.Decrement(ref _count);
            return false;
        }

        if (!_sessions.TryAdd(sessionId, entry))
        {
            Interlocked.Decrement(ref _count);
            return false;
        }

        entry.IsTransient = false;
        return true;
    }

    public void Forget(string sessionId, SessionEntry entry)
    {
        if (entry.Lock.CurrentCount == 1)
        {
            Remove(sessionId, entry);
        }
    }

    /// <summary>
    /// Drops an entry no request has ever changed, once nobody holds it: a visitor that never writes to its
    /// session leaves nothing behind, so a flood of them cannot fill this backend's memory.
    /// </summary>
    public void ForgetIfUnused(string sessionId, SessionEntry entry)
    {
        if (entry.Version == 0 && entry.Data.Count == 0 && entry.Lock.CurrentCount == 1)
        {
            Remove(sessionId, entry);
        }
    }

    public int PurgeExpired()
    {
        var now = Now();
        var purged = 0;
        foreach (var (id, entry) in _sessions)
        {
            if (entry.IsExpired(now) && entry.Lock.CurrentCount == 1 && Remove(id, entry))
            {
                purged++;
            }
        }

        return purged;
    }

    public long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();

    private bool Remove(string id, SessionEntry entry)
    {
        if (_sessions.TryRemove(new KeyValuePair<string, SessionEntry>(id, entry)))
        {
            Interlocked.Decrement(ref _count);
            lock (entry)
            {
                entry.IsRemoved = true;
                Interlocked.Add(ref _stateBytes, -entry.StateBytes);
                entry.StateBytes = 0;
            }

            return true;
        }

        return false;
    }
}
