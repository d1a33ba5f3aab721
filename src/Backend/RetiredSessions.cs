using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Baton.Backend;

/// <summary>
/// The session ids this backend rotated away from or ended (a response of it carried <c>Baton-Session-Action</c>),
/// each remembered for the session's idle timeout (the grant's <c>ttl</c>), at most
/// <c>Baton:Backend:MaxRetiredSessions</c> of them (past it the oldest are forgotten first). A request of such an
/// id is refused 410 with <c>Baton-Retired</c> and a restore of it 410, so a gateway that has not heard of the
/// rotation never brings the dead id back: not by restoring its last state here, nor by having it served.
/// </summary>
internal sealed class RetiredSessions(IOptions<BatonBackendOptions> options, TimeProvider time)
{
    // Read lock-free on every granted request; written under the lock, with the order of retirement for eviction.
    private readonly ConcurrentDictionary<string, long> _until = new(StringComparer.Ordinal);
    private readonly Queue<(string Id, long Until)> _order = new();
    private readonly Lock _lock = new();
    private readonly int _capacity = options.Value.Backend.MaxRetiredSessions;

    /// <summary>Ids remembered now (expired ones may linger until the next purge).</summary>
    public int Count => _until.Count;

    /// <summary>Remembers that <paramref name="sessionId"/> is dead here, for <paramref name="ttlMilliseconds"/> from now.</summary>
    public void Retire(string sessionId, long ttlMilliseconds)
    {
        var now = Now();
        var until = now + Math.Max(ttlMilliseconds, 1);
        lock (_lock)
        {
            if (_until.TryGetValue(sessionId, out var held) && held >= until)
            {
                return;
            }

            if (!_until.ContainsKey(sessionId) && _until.Count >= _capacity)
            {
                // The oldest go first (expired ones with them); the walk over expired ids is the purger's, so a flood of
                // logouts against a full memory costs each one only this eviction, under the lock.
                while (_until.Count >= _capacity && _order.TryDequeue(out var oldest))
                {
                    // Entries retired again later are in the queue twice: only the current one counts.
                    _until.TryRemove(new KeyValuePair<string, long>(oldest.Id, oldest.Until));
                }
            }

            _until[sessionId] = until;
            _order.Enqueue((sessionId, until));
        }
    }

    /// <summary>True while <paramref name="sessionId"/> is remembered as rotated away from or ended here.</summary>
    public bool IsRetired(string sessionId) => _until.TryGetValue(sessionId, out var until) && until > Now();

    /// <summary>Forgets the ids whose time is up.</summary>
    public void Forget()
    {
        lock (_lock)
        {
            ForgetExpired(Now());
        }
    }

    // The queue is in retirement order, not expiry order (ttls differ): walk it whole, keeping what is still due.
    private void ForgetExpired(long now)
    {
        for (var i = _order.Count; i > 0 && _order.TryDequeue(out var entry); i--)
        {
            if (!_until.TryGetValue(entry.Id, out var until) || until != entry.Until)
            {
                continue;
            }

            if (until <= now)
            {
                _until.TryRemove(new KeyValuePair<string, long>(entry.Id, until));
            }
            else
            {
                _order.Enqueue(entry);
            }
        }
    }

    private long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();
}
