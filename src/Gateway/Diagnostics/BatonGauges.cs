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
    public BatonGauges(IMeterFactory meterFactory, ISessionPinTable pins, RedisTier redis, JournalTier journal, Microsoft.Extensions.Options.IOptions<Configuration.BatonOptions> options)
    {
        var maxStateBytes = options.Value.Sessions.MaxTotalStateBytes;
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
        meter.CreateObservableGauge("baton.journal.size.limit", () => journal.MaxSizeBytes, "By", "Baton:Journal:MaxSizeBytes: past it, state may not grow.");
        meter.CreateObservableGauge("baton.session.state", () => pins.StateBytes, "By", "Bytes of state the kept sessions hold together (each at its latest checkpoint's size).");
        meter.CreateObservableGauge("baton.session.state.limit", () => maxStateBytes, "By", "Baton:Sessions:MaxTotalStateBytes: past it, state may not grow.");
    }
}
