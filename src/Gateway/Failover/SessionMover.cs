using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Model;

namespace Baton.Gateway.Failover;

/// <summary>
/// Moves a session off a destination that failed it: picks a healthy destination (never one already
/// tried), restores the session's last checkpoint there, and re-pins the session — all under a lock per
/// session, so when many requests of one session fail together exactly one of them restores and the
/// others follow the new pin. Across gateways sharing the tiers, a move is a claim in the shared truth that exactly
/// one gateway wins (see <see cref="ISessionPinTable.ClaimAsync"/>): the others wait for the winner's restore and
/// follow it. Every wait of a request here, over all its attempts and the lock's included, ends by one deadline:
/// <c>NoDestinationWait</c> from when the request first began to wait.
/// </summary>
internal sealed class SessionMover(
    ISessionPinTable pins,
    SessionStore store,
    ISessionRestorer restores,
    IOptions<BatonOptions> options,
    TimeProvider time,
    BatonMetrics metrics,
    FailoverEvents events,
    ILogger<SessionMover> logger)
{
    private static readonly TimeSpan AvailabilityPoll = TimeSpan.FromMilliseconds(100);
    private readonly SessionLocks _locks = new();
    private readonly BatonFailoverOptions _options = options.Value.Failover;

    // How long other gateways wait for this one's restore before they may take the move over: one restore's time, and a second to spare.
    private readonly TimeSpan _lease = options.Value.Failover.RestoreTimeout + TimeSpan.FromSeconds(1);

    private enum Placement
    {
        Placed,
        Refused,
        Lost,

        /// <summary>The session was renewed or ended: it is placed nowhere.</summary>
        Gone,
    }

    /// <summary>
    /// Makes sure the session lives on a healthy destination other than <paramref name="failed"/> and those
    /// in <paramref name="excluded"/>, restoring it there if it has to move. Null when no destination
    /// could take it within <c>NoDestinationWait</c>.
    /// </summary>
    public async Task<DestinationState?> MoveAsync(BatonSessionFeature session, ClusterState cluster, string? failed, IReadOnlySet<string> excluded, string reason, CancellationToken cancellationToken)
    {
        var deadline = DeadlineOf(session);
        using var held = await _locks.TryEnterAsync(session.Id, Remaining(deadline), cancellationToken);
        if (held is null)
        {
            // Another request of this session has been moving it for the whole wait: no destination came.
            return null;
        }

        using var expiry = new CancellationTokenSource(Remaining(deadline), time);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, expiry.Token);
        try
        {
            var pin = await pins.FindAsync(session.Id, cancellationToken);
            if (IsGone(session, pin))
            {
                return null;
            }

            // Another request of this session already moved it somewhere healthy: follow.
            if (pin is not null && !string.Equals(pin.DestinationId, failed, StringComparison.OrdinalIgnoreCase) && !excluded.Contains(pin.DestinationId)
                && AvailableNamed(cluster, pin.DestinationId) is { } current)
            {
                Adopt(session, pin);
                return current;
            }

            var refused = new HashSet<string>(excluded, StringComparer.OrdinalIgnoreCase);
            if (failed is not null)
            {
                refused.Add(failed);
            }

            while (true)
            {
                var followed = false;
                foreach (var target in Candidates(cluster, refused))
                {
                    var (placement, placed) = await PlaceAsync(session, pin, cluster, target, bounded.Token);
                    if (placement == Placement.Gone)
                    {
                        return null;
                    }

                    if (placement == Placement.Placed)
                    {
                        metrics.SessionMoved();
                        Log.SessionMoved(logger, session.Id.Hash, failed ?? "-", placed!.DestinationId);
                        events.Add(new FailoverEvent(time.GetUtcNow(), cluster.ClusterId, session.Id.Hash, failed ?? "-", placed.DestinationId, reason));
                        return placed;
                    }

                    if (placement == Placement.Lost)
                    {
                        // Another gateway moved the session first, or is moving it: wait for its restore, then follow it
                        // where it went — or, if that is no good here either, claim the next move from its epoch (at
                        // once only when the epoch moved on: a claim lost again from the same one waits for the next round).
                        var lostFrom = pin?.Epoch ?? 0;
                        pin = await pins.SettleAsync(session.Id, bounded.Token);
                        if (pin is null)
                        {
                            session.Gone = pins.IsRetired(session.Id);
                            return null;
                        }

                        Adopt(session, pin);
                        if (!refused.Contains(pin.DestinationId) && AvailableNamed(cluster, pin.DestinationId) is { } followedTo)
                        {
                            Log.SessionFollowed(logger, session.Id.Hash, followedTo.DestinationId, pin.Epoch);
                            return followedTo;
                        }

                        followed = pin.Epoch > lostFrom;
                        break;
                    }

                    refused.Add(target.DestinationId);
                }

                if (followed)
                {
                    continue;
                }

                if (time.GetUtcNow() >= deadline)
                {
                    return null;
                }

                await Task.Delay(Min(AvailabilityPoll, Remaining(deadline)), time, bounded.Token);

                // A destination that failed a restore may be fine again later: only the failed and tried ones stay out.
                refused = new HashSet<string>(excluded, StringComparer.OrdinalIgnoreCase);
                if (failed is not null)
                {
                    refused.Add(failed);
                }
            }
        }
        catch (OperationCanceledException) when (bounded.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>
    /// Restores the session onto the destination it is pinned to, whose backend refused it as stale (it restarted
    /// empty or came back after the session moved), in a new epoch. Returns where the session lives now: that
    /// destination, or wherever another gateway's move of it went meanwhile; null when the restore failed.
    /// </summary>
    public async Task<DestinationState?> RefreshAsync(BatonSessionFeature session, ClusterState cluster, DestinationState destination, CancellationToken cancellationToken)
    {
        var deadline = DeadlineOf(session);
        using var held = await _locks.TryEnterAsync(session.Id, Remaining(deadline), cancellationToken);
        if (held is null)
        {
            return null;
        }

        using var expiry = new CancellationTokenSource(Remaining(deadline), time);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, expiry.Token);
        try
        {
            var pin = await pins.FindAsync(session.Id, cancellationToken);
            if (IsGone(session, pin))
            {
                return null;
            }

            var (placement, placed) = await PlaceAsync(session, pin, cluster, destination, bounded.Token);
            if (placement != Placement.Lost)
            {
                return placed;
            }

            var settled = await pins.SettleAsync(session.Id, bounded.Token);
            if (settled is null)
            {
                session.Gone = pins.IsRetired(session.Id);
                return null;
            }

            Adopt(session, settled);
            return AvailableNamed(cluster, settled.DestinationId);
        }
        catch (OperationCanceledException) when (bounded.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return null;
        }
    }

    /// <summary>
    /// The one answer when no destination could take a request within the wait: counted, logged, 503. For a request whose
    /// session was renewed or ended on its way (<see cref="BatonSessionFeature.Gone"/>), the answer says so.
    /// </summary>
    public Task RefuseNoDestinationAsync(HttpContext context, ClusterState cluster)
    {
        if (context.Features.Get<BatonSessionFeature>() is { Gone: true } session)
        {
            return RefuseGoneAsync(context, session, "renewed or ended here");
        }

        metrics.NoDestination();
        Log.NoDestination(logger, cluster.ClusterId);
        return Refusal.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "No healthy backend is available; retry shortly.");
    }

    /// <summary>
    /// Brings the request's view of its session up to the shared truth's (the pin table's, without other gateways):
    /// where it is pinned now, in which epoch — once any other gateway's move of it is restored, within the deadline.
    /// </summary>
    public async Task FollowAsync(BatonSessionFeature session, CancellationToken cancellationToken)
    {
        using var expiry = new CancellationTokenSource(Remaining(DeadlineOf(session)), time);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, expiry.Token);
        try
        {
            if (await pins.SettleAsync(session.Id, bounded.Token) is { } pin)
            {
                Adopt(session, pin);
            }
        }
        catch (OperationCanceledException) when (expiry.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // Past the deadline: the resend goes where the pin in memory points, and meets the fence again if that is stale.
        }
    }

    /// <summary>Waits, until the request's deadline, for any healthy destination; false if none came.</summary>
    public async Task<bool> WaitForAnyDestinationAsync(BatonSessionFeature session, ClusterState cluster, CancellationToken cancellationToken)
    {
        var deadline = DeadlineOf(session);
        while (Available(cluster).Count == 0)
        {
            if (time.GetUtcNow() >= deadline)
            {
                return false;
            }

            await Task.Delay(Min(AvailabilityPoll, Remaining(deadline)), time, cancellationToken);
        }

        return true;
    }

    /// <summary>
    /// The answer to a request of a session renewed or ended (a login or logout) while it was on its way: 503 with
    /// <c>Retry-After</c>, nothing of the session restored or served. The retry carries the client's new cookie, or
    /// none (then a fresh, empty session).
    /// </summary>
    public Task RefuseGoneAsync(HttpContext context, BatonSessionFeature session, string how)
    {
        metrics.SessionGone();
        Log.SessionGone(logger, session.Id.Hash, how);
        return Refusal.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
            "This session was renewed or ended (a sign-in or sign-out) while this request was on its way; nothing was done. Retry shortly.");
    }

    // A session known when the request arrived and unknown now, or one this gateway knows was renewed or ended, is placed
    // nowhere: restoring its last state would bring a dead id back, with whatever a login made of it.
    private bool IsGone(BatonSessionFeature session, SessionPin? pin)
    {
        if (pin is null && (!session.IsNew || pins.IsRetired(session.Id)))
        {
            session.Gone = true;
        }

        return session.Gone;
    }

    private DateTimeOffset DeadlineOf(BatonSessionFeature session) => session.WaitDeadline ??= time.GetUtcNow() + _options.NoDestinationWait;

    private TimeSpan Remaining(DateTimeOffset deadline) => Max(deadline - time.GetUtcNow(), TimeSpan.Zero);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private async Task<(Placement, DestinationState?)> PlaceAsync(BatonSessionFeature session, SessionPin? pin, ClusterState cluster, DestinationState target, CancellationToken cancellationToken)
    {
        if (pin is null)
        {
            // Never served: nothing to restore; the target simply gets the session.
            return (Placement.Placed, target);
        }

        // Claim first, restore after, pin in memory last: exactly one gateway restores each move, and a request that
        // sees the new pin finds the state already there (were it pinned first, it could reach the target before the
        // restore and cause a second one).
        var claim = await pins.ClaimAsync(session.Id, target.DestinationId, _lease, cancellationToken);
        switch (claim.Outcome)
        {
            case ClaimOutcome.Won:
                break;
            case ClaimOutcome.Lost:
                return (Placement.Lost, null);
            default:
                // Nobody can tell who moves the session now: never restored (twice, or empty), it waits where it was.
                Log.MoveNotClaimed(logger, session.Id.Hash, target.DestinationId);
                throw new StoreUnavailableException("The journal could not take the session's move.");
        }

        var epoch = claim.Epoch;
        var placed = false;
        try
        {
            SessionRecord? record;
            try
            {
                record = await store.GetAsync(session.Id.Value, Math.Max(pin.Version, session.Version), cancellationToken, pin.Epoch, newestOfBoth: store.IsShared, refuseEnded: true);
            }
            catch (SessionEndedException)
            {
                // Another gateway ended or renewed it (the shared journal says so) and this one has not heard yet.
                pins.ForgetRetired(session.Id);
                session.Gone = true;
                return (Placement.Gone, null);
            }

            if (pins.IsRetired(session.Id))
            {
                // Renewed or ended while its state was read: its last state goes nowhere.
                session.Gone = true;
                return (Placement.Gone, null);
            }

            using var span = BatonTelemetry.Source.StartActivity("baton.restore");
            span?.SetTag("baton.session", session.Id.Hash);
            span?.SetTag("baton.destination", target.DestinationId);
            span?.SetTag("baton.session.version", record?.Version ?? 0);
            span?.SetTag("baton.session.epoch", epoch);
            var restored = await restores.RestoreAsync(cluster, target, session.Id, record, epoch, cancellationToken);
            if (restored.Status == System.Net.HttpStatusCode.Gone)
            {
                // The backend rotated the session away or ended it there (its rotating response may still be on its way to
                // this gateway, which then retires the id): never restored anywhere else either.
                span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, "the session was renewed or ended");
                session.Gone = true;
                return (Placement.Gone, null);
            }

            if (!restored.Accepted)
            {
                span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, "restore refused or failed");
                metrics.RestoreFailed();
                Log.RestoreFailed(logger, session.Id.Hash, target.DestinationId);
                return (Placement.Refused, null);
            }

            placed = true;
            if (await pins.PlacedAsync(session.Id, target.DestinationId, epoch, cancellationToken) is not { } repinned)
            {
                // Taken over meanwhile (or ended): follow whoever holds the session now.
                return (Placement.Lost, null);
            }

            metrics.Restored(record?.State.Length ?? 0);
            Log.SessionRestored(logger, session.Id.Hash, target.DestinationId, record?.Version ?? 0, epoch);
            Adopt(session, repinned with { Version = Math.Max(repinned.Version, record?.Version ?? 0) });
            return (Placement.Placed, target);
        }
        finally
        {
            if (!placed)
            {
                // The session stays in the claimed epoch (the old owner's copy is fenced) and the lease ends: the next
                // claim, here or on another gateway, goes on from there.
                await pins.AbandonAsync(session.Id, epoch);
            }
        }
    }

    private static void Adopt(BatonSessionFeature session, SessionPin pin)
    {
        session.PinnedDestinationId = pin.DestinationId;
        session.Epoch = pin.Epoch;
        session.Version = Math.Max(session.Version, pin.Version);
    }

    // The Baton available-destinations policy leaves out unhealthy and draining destinations.
    private static IReadOnlyList<DestinationState> Available(ClusterState cluster) => cluster.DestinationsState.AvailableDestinations;

    private static DestinationState? AvailableNamed(ClusterState cluster, string destinationId)
        => Available(cluster).FirstOrDefault(d => string.Equals(d.DestinationId, destinationId, StringComparison.OrdinalIgnoreCase));

    // Least busy first, so the sessions of a dead backend spread over the living.
    private static List<DestinationState> Candidates(ClusterState cluster, HashSet<string> refused)
        => Available(cluster).Where(d => !refused.Contains(d.DestinationId)).OrderBy(d => d.ConcurrentRequestCount).ThenBy(_ => Random.Shared.Next()).ToList();
}
