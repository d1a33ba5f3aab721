using System.Text.Json.Serialization;
using Baton.Gateway.Destinations;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Failover;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Yarp.ReverseProxy;

namespace Baton.Gateway.Operations;

/// <summary>What the status page shows, as JSON (<c>/_baton/status.json</c>).</summary>
internal sealed record GatewayStatus(
    DateTimeOffset Generated,
    bool Ready,
    int Sessions,
    [property: JsonPropertyName("anonymous_sessions")] int AnonymousSessions,
    IReadOnlyList<ClusterStatus> Clusters,
    StoreStatus Store,
    [property: JsonPropertyName("recent_failovers")] IReadOnlyList<FailoverEvent> RecentFailovers);

internal sealed record ClusterStatus(string Id, IReadOnlyList<DestinationStatus> Destinations);

/// <param name="Health">Active and passive health as YARP sees them: Healthy, Unhealthy or Unknown (not probed yet).</param>
/// <param name="Available">Whether new requests may go there (healthy or unknown, and not draining).</param>
/// <param name="Incarnation">The backend process last seen there (new after every restart); null before the first answer.</param>
/// <param name="RestoreCheck">Whether that process takes restores: "accepted", "refused &lt;status&gt;", "not_baton", or null before the first check.</param>
/// <param name="Failovers">Sessions moved away from it in the last five minutes.</param>
internal sealed record DestinationStatus(
    string Id,
    string Address,
    [property: JsonPropertyName("health_active")] string HealthActive,
    [property: JsonPropertyName("health_passive")] string HealthPassive,
    bool Available,
    bool Draining,
    string? Incarnation,
    [property: JsonPropertyName("restore_check")] string? RestoreCheck,
    int Sessions,
    [property: JsonPropertyName("failovers_5m")] int Failovers);

internal sealed record StoreStatus(RedisStatus Redis, JournalStatus Journal);

/// <param name="Current">Known to hold every write (confirmed by the last check; see RedisTier.IsCurrent).</param>
internal sealed record RedisStatus(bool Configured, bool Connected, [property: JsonPropertyName("circuit_open")] bool CircuitOpen, bool Current);

internal sealed record JournalStatus(
    string Path,
    [property: JsonPropertyName("size_bytes")] long SizeBytes,
    [property: JsonPropertyName("last_commit")] DateTimeOffset? LastCommit,
    [property: JsonPropertyName("queue_length")] int QueueLength,
    [property: JsonPropertyName("lag_ms")] double LagMs,
    [property: JsonPropertyName("quarantined_to")] string? QuarantinedTo);

/// <summary>Builds <see cref="GatewayStatus"/> from the live parts of the gateway.</summary>
internal sealed class StatusReport(
    IProxyStateLookup proxy,
    ISessionPinTable pins,
    DrainRegistry drains,
    DestinationIncarnations incarnations,
    RestoreChecker restoreChecks,
    FailoverEvents failovers,
    RedisTier redis,
    JournalTier journal,
    IHostApplicationLifetime lifetime,
    TimeProvider time)
{
    private static readonly TimeSpan FailoverWindow = TimeSpan.FromMinutes(5);

    public GatewayStatus Build()
    {
        var now = time.GetUtcNow();
        var sessions = pins.CountByDestination();
        var recent = failovers.Recent();
        var clusters = proxy.GetClusters().OrderBy(c => c.ClusterId, StringComparer.Ordinal).Select(cluster =>
        {
            var available = cluster.DestinationsState.AvailableDestinations;
            var destinations = cluster.Destinations.Values.OrderBy(d => d.DestinationId, StringComparer.Ordinal).Select(d => new DestinationStatus(
                d.DestinationId,
                d.Model.Config.Address,
                d.Health.Active.ToString(),
                d.Health.Passive.ToString(),
                available.Contains(d) && !drains.IsDrained(cluster.ClusterId, d.DestinationId),
                drains.IsDrained(cluster.ClusterId, d.DestinationId),
                incarnations.Get(cluster.ClusterId, d.DestinationId),
                Describe(restoreChecks.Get(cluster.ClusterId, d.DestinationId)),
                sessions.GetValueOrDefault(d.DestinationId),
                recent.Count(e => e.Cluster == cluster.ClusterId && string.Equals(e.From, d.DestinationId, StringComparison.OrdinalIgnoreCase) && now - e.At <= FailoverWindow))).ToList();
            return new ClusterStatus(cluster.ClusterId, destinations);
        }).ToList();

        var ready = lifetime.ApplicationStarted.IsCancellationRequested && !lifetime.ApplicationStopping.IsCancellationRequested;
        return new GatewayStatus(
            now,
            ready,
            pins.Count,
            pins.AnonymousCount,
            clusters,
            new StoreStatus(
                new RedisStatus(redis.IsConfigured, redis.IsConnected, redis.IsCircuitOpen, redis.IsCurrent),
                new JournalStatus(journal.Location, journal.SizeBytes, journal.LastCommit, journal.QueueLength, journal.Lag.TotalMilliseconds, journal.QuarantinedTo)),
            recent.Take(20).ToList());
    }

    private static string? Describe(RestoreCheckState? check) => check?.Outcome switch
    {
        null => null,
        RestoreCheckOutcome.Accepted => "accepted",
        RestoreCheckOutcome.Refused => $"refused {check.Status}",
        _ => "not_baton",
    };
}
