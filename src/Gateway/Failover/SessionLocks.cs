using System.Collections.Concurrent;
using Baton.Gateway.Sessions;

namespace Baton.Gateway.Failover;

/// <summary>
/// One lock per session, made when a session needs it and dropped when nobody holds or waits for it: moves
/// of unrelated sessions never queue behind each other, however many happen at once.
/// </summary>
internal sealed class SessionLocks
{
    private readonly ConcurrentDictionary<SessionId, Holder> _holders = new();

    /// <summary>Sessions with a lock held or awaited now.</summary>
    public int Count => _holders.Count;

    /// <summary>Takes the session's lock, waiting at most <paramref name="timeout"/>; null when it was not free in time.</summary>
    public async Task<IDisposable?> TryEnterAsync(SessionId id, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Holder holder;
        while (true)
        {
            holder = _holders.GetOrAdd(id, static _ => new Holder());
            if (holder.Join())
            {
                break;
            }
        }

        var entered = false;
        try
        {
            entered = await holder.Gate.WaitAsync(timeout, cancellationToken);
        }
        finally
        {
            if (!entered)
            {
                Leave(id, holder);
            }
        }

        return entered ? new Releaser(this, id, holder) : null;
    }

    private void Leave(SessionId id, Holder holder)
    {
        if (holder.Part())
        {
            _holders.TryRemove(new KeyValuePair<SessionId, Holder>(id, holder));
        }
    }

    private sealed class Holder
    {
        private int _users;

        public SemaphoreSlim Gate { get; } = new(1, 1);

        /// <summary>Counts one more user; false once the holder is retired (a new one must be made).</summary>
        public bool Join()
        {
            lock (this)
            {
                if (_users < 0)
                {
                    return false;
                }

                _users++;
                return true;
            }
        }

        /// <summary>Counts one user less; true when it was the last, and the holder is now retired.</summary>
        public bool Part()
        {
            lock (this)
            {
                if (--_users > 0)
                {
                    return false;
                }

                _users = -1;
                return true;
            }
        }
    }

    private sealed class Releaser(SessionLocks locks, SessionId id, Holder holder) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                holder.Gate.Release();
                locks.Leave(id, holder);
            }
        }
    }
}
