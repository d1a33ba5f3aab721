namespace Baton.Gateway.Sessions;

/// <summary>
/// A live session, the destination it is pinned to, the newest checkpoint version stored for it, and its
/// epoch: how many times it has moved to another destination.
/// </summary>
internal sealed record SessionPin(SessionId Id, string DestinationId, long Version, long Epoch);

/// <summary>What <see cref="ISessionPinTable.ClaimAsync"/> made of a move: who won, and the epoch claimed.</summary>
internal readonly record struct MoveClaim(Store.ClaimOutcome Outcome, long Epoch);

/// <summary>What <see cref="ISessionPinTable.TryKeep"/> made of a session's new state.</summary>
internal enum KeepOutcome
{
    /// <summary>Kept (now or before), its state counted at the new size.</summary>
    Kept,

    /// <summary>The session is not in the table any more (renewed, ended, expired or evicted).</summary>
    Gone,

    /// <summary>A new session at <c>Baton:Sessions:MaxSessions</c>.</summary>
    SessionLimit,

    /// <summary>State that would grow the total past <c>Baton:Sessions:MaxTotalStateBytes</c>, or grow while the store is full.</summary>
    StateBudget,
}

/// <summary>
/// Which destination each live session is pinned to. A session unused for the idle timeout is gone:
/// lookups no longer find it and a purge removes it everywhere.
/// A new session is <em>anonymous</em> at first: pinned in memory only, within
/// <c>Baton:Sessions:MaxAnonymousSessions</c> (the oldest evicted first), never written to the store. It is
/// <em>kept</em> — a slot under <c>Baton:Sessions:MaxSessions</c>, stored — once a backend writes state for it
/// (<see cref="TryKeep"/>). So visitors that never change their session cannot fill the table.
/// </summary>
internal interface ISessionPinTable
{
    /// <summary>Kept sessions (with state) currently tracked (expired ones may linger until the next purge).</summary>
    int Count { get; }

    /// <summary>Anonymous sessions currently tracked.</summary>
    int AnonymousCount { get; }

    /// <summary>Bytes of state of the kept sessions, each counted at the size of its latest checkpoint.</summary>
    long StateBytes { get; }

    /// <summary>
    /// Keeps the session from now on, because a backend wrote <paramref name="stateBytes"/> of state for it
    /// in <paramref name="version"/>: it takes a slot under <c>Baton:Sessions:MaxSessions</c> (unless kept
    /// already) and its state counts at the new size against <c>Baton:Sessions:MaxTotalStateBytes</c> (a new
    /// session only up to nine tenths of it; an older version than the one counted changes nothing). A
    /// session at either limit is left as it was; state that does not grow is never refused. With
    /// <paramref name="mayGrow"/> false (the store is full) state may not grow at all.
    /// </summary>
    KeepOutcome TryKeep(SessionId id, int stateBytes, long version, bool mayGrow = true);

    /// <summary>The session's pin, refreshing its idle timer; null when the session is unknown or expired.</summary>
    ValueTask<SessionPin?> FindAsync(SessionId id, CancellationToken cancellationToken);

    /// <summary>
    /// As <see cref="FindAsync"/>, and a session the table does not know is looked up in the tiers where they may
    /// hold one it never loaded (a shared journal, a local journal that began empty): a session another gateway
    /// created or a lost journal held continues here. Never brings back a session this table ended or renewed. With
    /// tiers other gateways share, a pin that may have missed their notices is checked against the tiers first.
    /// </summary>
    ValueTask<SessionPin?> FindOrLoadAsync(SessionId id, CancellationToken cancellationToken);

    /// <summary>
    /// Pins the session to the destination, adding it (anonymous) when it is new; a move to another
    /// destination starts a new epoch (for a stored session, through a claim: see <see cref="ClaimAsync"/>). Returns
    /// the pin now in force.
    /// </summary>
    ValueTask<SessionPin> PinAsync(SessionId id, string destinationId, CancellationToken cancellationToken);

    /// <summary>
    /// Claims a move of the session onto <paramref name="destinationId"/> in the next epoch. For a stored session the
    /// claim is a check-and-set in the shared truth that exactly one claim of all gateways wins; the winner's pin in
    /// memory enters the new epoch at once (the old owner's copy is fenced) and moves to the destination when
    /// <see cref="PlacedAsync"/> says its restore is done, while a <paramref name="lease"/> makes the others wait for
    /// that (<see cref="SettleAsync"/>). A session never stored needs no claim.
    /// </summary>
    ValueTask<MoveClaim> ClaimAsync(SessionId id, string destinationId, TimeSpan lease, CancellationToken cancellationToken);

    /// <summary>
    /// The won claim's restore is done: the session is pinned here in memory, and the others are let go on. Null when the
    /// restore came too late to be the session's pin (it ended, got a new id, or another gateway took the move over).
    /// </summary>
    ValueTask<SessionPin?> PlacedAsync(SessionId id, string destinationId, long epoch, CancellationToken cancellationToken);

    /// <summary>The won claim's restore failed: its lease ends; the session stays in the claimed epoch, for the next claim.</summary>
    ValueTask AbandonAsync(SessionId id, long epoch);

    /// <summary>
    /// The session's pin as the shared truth holds it once no other gateway's move of it is under way (waiting, until
    /// <paramref name="cancellationToken"/>, for that restore): for a gateway that lost a claim or whose change was
    /// fenced. Null when the session ended. Without a shared journal, the pin in memory.
    /// </summary>
    ValueTask<SessionPin?> SettleAsync(SessionId id, CancellationToken cancellationToken);

    /// <summary>Notes that a checkpoint of this version is stored; versions only move forward.</summary>
    void RecordVersion(SessionId id, long version);

    /// <summary>
    /// A checkpoint of the session was stored: a delta of <paramref name="deltaBytes"/> (a link more in its chain), or a
    /// whole state (null: the chain ends). <paramref name="reported"/> is the longest chain a tier said it holds after
    /// that delta (links and bytes, counting those other gateways stored): the chain is the longer of the two counts.
    /// </summary>
    void RecordChain(SessionId id, int? deltaBytes, (int Links, long Bytes) reported = default);

    /// <summary>A tier is behind on the session (it could not apply a delta, or missed a write): its next checkpoint should be whole (until one is stored).</summary>
    void RequireWhole(SessionId id);

    /// <summary>
    /// True when the session's next checkpoint may be a delta: deltas are on (<c>Baton:Checkpoints:MaxDeltaChain</c>),
    /// the session's chain is shorter than that and holds no more bytes than the state, and no tier fell behind
    /// on it since its last whole state.
    /// </summary>
    bool TakesDelta(SessionId id);

    /// <summary>
    /// Starts a new epoch for the session on the same destination (claimed when the store can take it): its
    /// backend's copy becomes stale, so the next request restores the last stored checkpoint there first.
    /// Used when a change the backend holds in memory could not be stored.
    /// </summary>
    void AdvanceEpoch(SessionId id);

    /// <summary>
    /// Moves the session to a new id (rotation): same pin, version, epoch and standing. The old id is dead from here,
    /// remembered for one idle timeout: never found, loaded, pinned, claimed or placed again (<see cref="IsRetired"/>).
    /// The rotation is under way until <see cref="RekeyDone"/>.
    /// </summary>
    void Rekey(SessionId id, SessionId renewed);

    /// <summary>The rotation of <paramref name="id"/> is over: the new id holds the session's state, or the rotation failed.</summary>
    void RekeyDone(SessionId id);

    /// <summary>
    /// The id a session was rekeyed to from <paramref name="id"/> (remembered for one idle timeout), once that rotation is
    /// over; null when none.
    /// </summary>
    Task<SessionId?> RenamedToAsync(SessionId id, CancellationToken cancellationToken);

    /// <summary>
    /// True when the session was renewed (rekeyed) or ended in the last idle timeout, here or as another gateway said:
    /// nothing of it may be restored, pinned or served again.
    /// </summary>
    bool IsRetired(SessionId id);

    /// <summary>
    /// Someone else ended or renewed the session (a shared journal marks it ended): it goes from this table without a
    /// write to tiers other gateways share, and is never loaded again while a tier may hold it.
    /// </summary>
    void ForgetRetired(SessionId id);

    /// <summary>Drops the session now (it ended), from the store too.</summary>
    void Forget(SessionId id);

    /// <summary>Live sessions per destination (a walk over the table: for metrics and the status page, not the hot path).</summary>
    IReadOnlyDictionary<string, int> CountByDestination();

    /// <summary>Removes every expired session; returns how many.</summary>
    ValueTask<int> PurgeExpiredAsync(CancellationToken cancellationToken);

    /// <summary>Adds the live sessions the store knows (at startup).</summary>
    Task LoadAsync(CancellationToken cancellationToken);
}
