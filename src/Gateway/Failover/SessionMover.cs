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
/// others follow the new pin. Every wait of a request here, over all its attempts and the lock's included,
/// ends by one deadline: <c>NoDestinationWait</c> from when the request first began to wait.
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

            // Another request of this session already moved it somewhere healthy: follow.
            if (pin is not null && !string.Equals(pin.DestinationId, failed, StringComparison.OrdinalIgnoreCase) && !excluded.Contains(pin.DestinationId)
                && Available(cluster).FirstOrDefault(d => string.Equals(d.DestinationId, pin.DestinationId, StringComparison.OrdinalIgnoreCase)) is { } current)
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
                foreach (var target in Candidates(cluster, refused))
                {
                    if (await PlaceAsync(session, pin, cluster, target, bounded.Token) is { } placed)
                    {
                        metrics.SessionMoved();
                        Log.SessionMoved(logger, session.Id.Hash, failed ?? "-", placed.DestinationId);
                        events.Add(new FailoverEvent(time.GetUtcNow(), cluster.ClusterId, session.Id.Hash, failed ?? "-", placed.DestinationId, reason));
                        return placed;
                    }

                    refused.Add(target.DestinationId);
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
    /// Restores the session onto the destination it is pinned to, whose backend refused it as stale (it
    /// restarted empty or came back after the session moved). False when the restore failed.
    /// </summary>
    public async Task<bool> RefreshAsync(BatonSessionFeature session, ClusterState cluster, DestinationState destination, CancellationToken cancellationToken)
    {
        var deadline = DeadlineOf(session);
        using var held = await _locks.TryEnterAsync(session.Id, Remaining(deadline), cancellationToken);
        if (held is null)
        {
            return false;
        }

        using var expiry = new CancellationTokenSource(Remaining(deadline), time);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, expiry.Token);
        try
        {
            var pin = await pins.FindAsync(session.Id, cancellationToken);
            return await PlaceAsync(session, pin, cluster, destination, bounded.Token) is not null;
        }
        catch (OperationCanceledException) when (bounded.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>The one answer when no destination could take a request within the wait: counted, logged, 503.</summary>
    public Task RefuseNoDestinationAsync(HttpContext context, ClusterState cluster)
    {
        metrics.NoDestination();
        Log.NoDestination(logger, cluster.ClusterId);
        return Refusal.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "No healthy backend is available; retry shortly.");
    }

    /// <summary>Brings the request's view of its session up to the pin table's: where it is pinned now, in which epoch.</summary>
    public async Task FollowAsync(BatonSessionFeature session, CancellationToken cancellationToken)
    {
        if (await pins.FindAsync(session.Id, cancellationToken) is { } pin)
        {
            Adopt(session, pin);
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

    private DateTimeOffset DeadlineOf(BatonSessionFeature session) => session.WaitDeadline ??= time.GetUtcNow() + _options.NoDestinationWait;

    private TimeSpan Remaining(DateTimeOffset deadline) => Max(deadline - time.GetUtcNow(), TimeSpan.Zero);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private async Task<DestinationState?> PlaceAsync(BatonSessionFeature session, SessionPin? pin, ClusterState cluster, DestinationState target, CancellationToken cancellationToken)
    {
        if (pin is null)
        {
            // Never served: nothing to restore; the target simply gets the session.
            return target;
        }

        var moving = !string.Equals(pin.DestinationId, target.DestinationId, StringComparison.OrdinalIgnoreCase);
        var epoch = pin.Epoch + (moving ? 1 : 0);
        var record = await store.GetAsync(session.Id.Value, Math.Max(pin.Version, session.Version), cancellationToken, pin.Epoch);

        // Restore first, pin in memory after: a request that sees the new pin must find the state already
        // there (were it pinned first, it could reach the target before the restore and cause a second one).
        using var span = BatonTelemetry.Source.StartActivity("baton.restore");
        span?.SetTag("baton.session", session.Id.Hash);
        span?.SetTag("baton.destination", target.DestinationId);
        span?.SetTag("baton.session.version", record?.Version ?? 0);
        span?.SetTag("baton.session.epoch", epoch);
        // The durable pin is written while the restore runs; the pin in memory changes only after both.
        var restored = restores.RestoreAsync(cluster, target, session.Id, record, epoch, cancellationToken);
        if (await pins.PinWhenAsync(session.Id, target.DestinationId, restored, cancellationToken) is not { } repinned)
        {
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, "restore refused or failed");
            metrics.RestoreFailed();
            Log.RestoreFailed(logger, session.Id.Hash, target.DestinationId);
            return null;
        }

        metrics.Restored(record?.State.Length ?? 0);
        Log.SessionRestored(logger, session.Id.Hash, target.DestinationId, record?.Version ?? 0, epoch);
        Adopt(session, repinned with { Version = Math.Max(repinned.Version, record?.Version ?? 0) });
        return target;
    }

    private static void Adopt(BatonSessionFeature session, SessionPin pin)
    {
        session.PinnedDestinationId = pin.DestinationId;
        session.Epoch = pin.Epoch;
        session.Version = Math.Max(session.Version, pin.Version);
    }

    // The Baton available-destinations policy leaves out unhealthy and draining destinations.
    private static IReadOnlyList<DestinationState> Available(ClusterState cluster) => cluster.DestinationsState.AvailableDestinations;

    // Least busy first, so the sessions of a dead backend spread over the living.
    private static List<DestinationState> Candidates(ClusterState cluster, HashSet<string> refused)
        => Available(cluster).Where(d => !refused.Contains(d.DestinationId)).OrderBy(d => d.ConcurrentRequestCount).ThenBy(_ => Random.Shared.Next()).ToList();
}
