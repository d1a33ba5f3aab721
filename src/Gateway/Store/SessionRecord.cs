using Baton.Protocol;

namespace Baton.Gateway.Store;

/// <summary>
/// One session as every tier stores and returns it, whole: the destination it is pinned to (<see cref="Owner"/>)
/// in its epoch (how many times it has moved), its newest checkpoint (version, opaque state and the state's
/// SHA-256 as the backend sent it), when it was last used, and when a tier may drop it. Times are Unix
/// milliseconds. Version 0 with an empty state is a session that was pinned but never changed.
/// </summary>
/// <remarks>
/// The owner travels with the epoch: a write of a later epoch sets both, a write of the same epoch leaves the
/// owner a move wrote. A checkpoint names the epoch it was made in; a tier takes it only from the session's
/// current epoch or a later one, and only above the version it holds.
/// </remarks>
/// <remarks>
/// A checkpoint that is a delta (<see cref="DeltaBase"/> set) is written as a record whose <see cref="State"/> and
/// <see cref="Digest"/> are the delta's: a tier applies it onto the version it holds when that is of the same epoch, at
/// or above the base and below <see cref="Version"/> (else <see cref="SaveOutcome.Unapplicable"/>), and keeps it as a
/// link of a chain after its last whole state (<see cref="StateChain"/>). Every record a tier returns is whole: the
/// chain folded in.
/// </remarks>
internal sealed record SessionRecord(string SessionId, string? Owner, long Epoch, long Version, byte[] State, string Digest, long LastAccess, long ExpiresAt)
{
    /// <summary>
    /// For a checkpoint that is a delta: the version its changes count from (<see cref="State"/> holds the changes
    /// since then, <see cref="Digest"/> their digest); null for a whole state. Only ever written, never returned.
    /// </summary>
    public long? DeltaBase { get; init; }

    /// <summary>The digest of an empty state: a pinned session's before its first checkpoint.</summary>
    public static readonly string EmptyDigest = Ids.Sha256([]);

    /// <summary>
    /// Until when (Unix ms) the move into <see cref="Epoch"/> is being restored by the gateway that claimed it; 0 when
    /// no restore is under way. Only a shared journal keeps it (see <see cref="IDurableTier.ClaimAsync"/>).
    /// </summary>
    public long MovingUntil { get; init; }

    /// <summary>What a starting gateway keeps of it.</summary>
    public SessionSummary Summary => new(SessionId, Owner, Epoch, Version, State.Length, LastAccess) { MovingUntil = MovingUntil };
}

/// <summary>A live session without its state (a pin table entry), as loaded at startup.</summary>
internal sealed record SessionSummary(string SessionId, string? Owner, long Epoch, long Version, int StateBytes, long LastAccess)
{
    /// <summary>As <see cref="SessionRecord.MovingUntil"/>.</summary>
    public long MovingUntil { get; init; }

    /// <summary>A later epoch, or a later version of the same epoch, than <paramref name="other"/>.</summary>
    public bool IsNewerThan(SessionSummary other) => SessionPosition.IsNewer(Epoch, Version, other.Epoch, other.Version);
}

/// <summary>How two copies of a session's line of changes compare.</summary>
internal static class SessionPosition
{
    /// <summary>A later epoch, or a later version of the same epoch.</summary>
    public static bool IsNewer(long epoch, long version, long thanEpoch, long thanVersion)
        => epoch > thanEpoch || (epoch == thanEpoch && version > thanVersion);
}

/// <summary>What became of a checkpoint.</summary>
internal enum SaveOutcome
{
    /// <summary>Stored: it is the newest version.</summary>
    Stored,

    /// <summary>Not stored: the tier already holds this version or a newer one.</summary>
    Stale,

    /// <summary>
    /// Not stored: it was made in an epoch older than the session's (an owner the session has moved
    /// away from). Its change must not be acknowledged.
    /// </summary>
    Fenced,

    /// <summary>
    /// Not stored: the tier already holds this version or a newer one, made in an older epoch (an old owner's
    /// change that landed while the session moved). This checkpoint is from another line of changes: its change
    /// must not be acknowledged.
    /// </summary>
    Diverged,

    /// <summary>Not stored: the tier is down, failing or over its time budget.</summary>
    Unavailable,

    /// <summary>Not stored: the tier refused at once, its write queue full (an overload, not a failure).</summary>
    Busy,

    /// <summary>
    /// Not stored: a delta the tier cannot apply — it holds a version below the delta's base, one of another epoch, or
    /// nothing. The tier is not failing; it needs a whole state.
    /// </summary>
    Unapplicable,
}

/// <summary>What became of a claim of a move (<see cref="IDurableTier.ClaimAsync"/>).</summary>
internal enum ClaimOutcome
{
    /// <summary>This claim won: the session is in the new epoch, pinned to the claimant's target.</summary>
    Won,

    /// <summary>Another claim won first (the session is in a later epoch), or another move's restore is under way.</summary>
    Lost,

    /// <summary>The tier is down, failing or over its time budget: nobody knows who won.</summary>
    Unavailable,

    /// <summary>The tier refused at once, its write queue full.</summary>
    Busy,
}

/// <summary>What became of a move, touch or end.</summary>
internal enum WriteOutcome
{
    /// <summary>Written (or nothing to write: a touch of a session the tier does not hold).</summary>
    Written,

    /// <summary>Not written: the tier is down, failing or over its time budget.</summary>
    Unavailable,

    /// <summary>Not written: the tier refused at once, its write queue full.</summary>
    Busy,
}

/// <summary>A tier's answer to a read: whether it answered, and the record it holds (null when none).</summary>
internal readonly record struct TierRead(bool Available, SessionRecord? Record)
{
    public static TierRead Unavailable => new(false, null);
}
