using System.Collections.Concurrent;
using Baton.Gateway.Configuration;
using Baton.Gateway.Destinations;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Baton.Gateway.Failover;

/// <summary>
/// Proves each destination's restore channel once per backend process, before a failover needs it: every
/// <c>RestoreCheckInterval</c>, and as soon as a response names a process not seen before, it asks each
/// destination which process answers and moves a throwaway session there the way a failover moves one
/// (read its checkpoint from the store — there is none — and restore that empty state). The throwaway id
/// never carries a request. A refusal (another secret, a skewed clock) is logged as an error and shown on
/// the status page; running the whole path also readies both sides for the first real failover.
/// </summary>
internal sealed class RestoreChecker(
    IProxyStateLookup proxy,
    RestoreClient restores,
    SessionStore store,
    DestinationIncarnations incarnations,
    IOptions<BatonOptions> options,
    TimeProvider time,
    BatonMetrics metrics,
    ILogger<RestoreChecker> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<(string Cluster, string Destination), RestoreCheckState> _states = new();

    /// <summary>The last verdict on a destination's restore channel; null before its first check.</summary>
    public RestoreCheckState? Get(string clusterId, string destinationId) => _states.TryGetValue((clusterId, destinationId), out var state) ? state : null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await CheckAllAsync(stoppingToken);
                await incarnations.WaitForChangeAsync(options.Value.Failover.RestoreCheckInterval, time, stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Checks each destination of each Baton cluster at once, so a hung one holds up no other.</summary>
    private Task CheckAllAsync(CancellationToken cancellationToken)
        => Task.WhenAll(proxy.GetClusters()
            .Where(cluster => BatonConstants.IsBatonAffinity(cluster.Model.Config.SessionAffinity))
            .SelectMany(cluster => cluster.Destinations.Values.Select(d => CheckSafelyAsync(cluster, d, cancellationToken))));

    // A check that fails unexpectedly (the store unavailable, say) is tried again at the next round; it
    // must never stop the gateway.
    private async Task CheckSafelyAsync(ClusterState cluster, DestinationState destination, CancellationToken cancellationToken)
    {
        try
        {
            await CheckAsync(cluster, destination, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Log.RestoreCheckFailed(logger, destination.DestinationId, ex);
        }
    }

    private async Task CheckAsync(ClusterState cluster, DestinationState destination, CancellationToken cancellationToken)
    {
        var key = (cluster.ClusterId, destination.DestinationId);
        var previous = Get(cluster.ClusterId, destination.DestinationId);
        var (answered, incarnation) = await restores.IdentifyAsync(cluster, destination, cancellationToken);
        if (!answered)
        {
            // Down or hung: the health checks' business. It is checked again once it answers.
            return;
        }

        if (incarnation is null)
        {
            if (previous is not { Outcome: RestoreCheckOutcome.NotBaton })
            {
                Log.RestoreCheckNotBaton(logger, destination.DestinationId);
            }

            _states[key] = new RestoreCheckState(null, RestoreCheckOutcome.NotBaton, null, time.GetUtcNow());
            return;
        }

        if (previous is { Outcome: RestoreCheckOutcome.Accepted } && previous.Incarnation == incarnation)
        {
            return;
        }

        var throwaway = SessionId.New();
        var record = await store.GetAsync(throwaway.Value, minimumVersion: 0, cancellationToken);
        var result = await restores.TryRestoreAsync(cluster, destination, throwaway, record, epoch: 0, cancellationToken);
        if (result.Accepted)
        {
            metrics.RestoreChecked("accepted");
            Log.RestoreCheckAccepted(logger, destination.DestinationId, result.Incarnation ?? incarnation);
            _states[key] = new RestoreCheckState(result.Incarnation ?? incarnation, RestoreCheckOutcome.Accepted, null, time.GetUtcNow());
        }
        else if (result.Status is { } status)
        {
            metrics.RestoreChecked("refused");
            if (previous is not { Outcome: RestoreCheckOutcome.Refused } || previous.Incarnation != incarnation)
            {
                Log.RestoreCheckRefused(logger, destination.DestinationId, (int)status);
            }

            _states[key] = new RestoreCheckState(incarnation, RestoreCheckOutcome.Refused, (int)status, time.GetUtcNow());
        }
    }
}

/// <summary>The last verdict on one destination's restore channel.</summary>
/// <param name="Status">The backend's status when it refused the check's restore.</param>
internal sealed record RestoreCheckState(string? Incarnation, RestoreCheckOutcome Outcome, int? Status, DateTimeOffset At);

internal enum RestoreCheckOutcome
{
    /// <summary>The backend process took the check's restore.</summary>
    Accepted,

    /// <summary>The backend answered the restore with an error status.</summary>
    Refused,

    /// <summary>Something answers but names no incarnation: not a Baton backend.</summary>
    NotBaton,
}
