namespace Baton.Gateway.Store;

/// <summary>
/// A place sessions are stored: Redis (the fast tier), a journal (the durable tier: SQLite, PostgreSQL or
/// MySQL) or memory (tests). One command per kind of write; each says what became of it instead of throwing, so
/// the store decides what a tier's failure means. A tier does no I/O until the host starts it.
/// </summary>
internal interface ISessionTier
{
    /// <summary>The tier as logs, metrics and the status page name it (<c>redis</c>, <c>sqlite</c>, ...).</summary>
    string Name { get; }

    /// <summary>False for a tier that is not set up (no Redis configured): every call answers unavailable.</summary>
    bool IsConfigured { get; }

    /// <summary>
    /// True when the tier is known to hold every write it was sent (a Redis that missed none since it was last
    /// checked); only such a tier may answer for a write alone.
    /// </summary>
    bool IsCurrent { get; }

    /// <summary>True while the tier may not grow (<c>Baton:Journal:MaxSizeBytes</c>).</summary>
    bool IsFull { get; }

    /// <summary>
    /// Stores the checkpoint unless the session is in a later epoch (Fenced), or the tier holds the same or a newer
    /// version, of the same epoch (Stale) or an older one (Diverged). Creates the session when new. A delta stored notes
    /// in <paramref name="report"/> the chain the tier holds after the session's whole state, this delta its last link.
    /// </summary>
    Task<SaveOutcome> CheckpointAsync(SessionRecord record, CheckpointReport? report = null);

    /// <summary>
    /// Pins the session to <paramref name="owner"/> in <paramref name="epoch"/> (epochs only move forward; an older
    /// epoch's owner is ignored), creating an empty version-0 session when new.
    /// </summary>
    Task<WriteOutcome> MoveAsync(string sessionId, string owner, long epoch, long lastAccess, long expiresAt);

    /// <summary>Moves the session's last use and expiry forward (never back); a session the tier does not hold stays absent.</summary>
    Task<WriteOutcome> TouchAsync(string sessionId, long lastAccess, long expiresAt);

    /// <summary>Forgets the session (it ended).</summary>
    Task<WriteOutcome> EndAsync(string sessionId);

    /// <summary>Drops every session whose expiry is before <paramref name="now"/>; how many, or null when unavailable.</summary>
    Task<int?> PurgeAsync(long now);

    /// <summary>The session's record; unavailable when the tier did not answer.</summary>
    Task<TierRead> GetAsync(string sessionId, CancellationToken cancellationToken);

    /// <summary>Every session used at or after <paramref name="cutoff"/>, without state: what a starting gateway must know.</summary>
    TierScan ScanLive(long cutoff);

    /// <summary>Waits at most <paramref name="timeout"/> for the tier to be reachable; false when it is not by then.</summary>
    Task<bool> WaitAvailableAsync(TimeSpan timeout, CancellationToken cancellationToken);
}

/// <summary>One pass over a tier's live sessions; <see cref="Skipped"/> counts those it could not read.</summary>
internal sealed class TierScan(Func<TierScan, IAsyncEnumerable<SessionSummary>> read)
{
    /// <summary>Sessions the tier did not answer for (over budget, gone midway): left out of the pass.</summary>
    public int Skipped { get; set; }

    public IAsyncEnumerable<SessionSummary> Records => read(this);
}
