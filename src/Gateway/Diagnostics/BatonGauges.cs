using System.Diagnostics.Metrics;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;

namespace Baton.Gateway.Diagnostics;

/// <summary>
/// The gauges of the <c>Baton</c> meter, read when a collector asks: live sessions per destination, Redis
/// tier health, the journal's queue, lag and size.
/// </summary>
internal sealed class BatonGauges
{
    public BatonGauges(IMeterFactory meterFactory, ISessionPinTable pins, RedisTier redis, JournalTier journal)
    {
        var meter = meterFactory.Create(BatonMetrics.MeterName);
        meter.CreateObservableGauge(
            "baton.session.live",
            () => pins.CountByDestination().Select(pair => new Measurement<int>(pair.Value, new KeyValuePair<string, object?>("baton.destination", pair.Key))),
            "{session}",
            "Live sessions pinned to each destination.");
        if (redis.IsConfigured)
        {
            meter.CreateObservableGauge("baton.redis.up", () => redis.IsConnected && !redis.IsCircuitOpen ? 1 : 0, "{state}", "1 while the Redis tier is connected and its circuit closed; 0 while the journal alone carries the store.");
        }

        meter.CreateObservableGauge("baton.journal.queue.length", () => journal.QueueLength, "{write}", "Journal writes waiting for the writer.");
        meter.CreateObservableGauge(
            "baton.journal.lag",
            () => journal.Lag.TotalSeconds,
            "s",
            "Age of the oldest journal write not yet committed: what clients wait for, and with Baton:Checkpoints:Durability=RiskLossOnGatewayCrash the window of changes a gateway crash would lose.");
        meter.CreateObservableGauge("baton.journal.size", () => journal.SizeBytes, "By", "The journal's size on disk, with its write-ahead log.");
    }
}
