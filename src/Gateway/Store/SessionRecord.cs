namespace Baton.Gateway.Store;

/// <summary>
/// One session as the store keeps it: its newest checkpoint (version and opaque state), the destination it
/// is pinned to, the epoch it is pinned in, and times in Unix milliseconds. Version 0 with an empty state
/// is a session that was pinned but never changed.
/// </summary>
internal sealed record SessionRecord(string SessionId, long Version, byte[] State, string? Owner, long UpdatedAt, long LastAccess)
{
    /// <summary>
    /// The session's epoch: for a pin, the one it is pinned in; for a checkpoint, the one it was made in.
    /// A store takes a checkpoint only from the session's current epoch or a later one.
    /// </summary>
    public long Epoch { get; init; }
}

/// <summary>A live session's pin as loaded at startup.</summary>
internal sealed record StoredPin(string SessionId, long Version, string? Owner, long Epoch, long LastAccess, int StateBytes = 0);

/// <summary>What became of a checkpoint.</summary>
internal enum SaveOutcome
{
    /// <summary>Stored: it is the newest version.</summary>
    Stored,

    /// <summary>Not stored: the store already holds this version or a newer one.</summary>
    Stale,

    /// <summary>
    /// Not stored: it was made in an epoch older than the session's (an owner the session has moved
    /// away from). Its change must not be acknowledged.
    /// </summary>
    Fenced,

    /// <summary>
    /// Not stored: the store already holds this version or a newer one, made in an older epoch (an old owner's
    /// change that landed while the session moved). This checkpoint is from another line of changes: its change
    /// must not be acknowledged.
    /// </summary>
    Diverged,
}
