using System.Diagnostics.Metrics;

namespace Baton.Backend;

/// <summary>The backend library's instruments, on the <c>Baton</c> meter.</summary>
internal sealed class BackendMetrics
{
    private readonly Counter<long> _checkpoints;
    private readonly Counter<long> _checkpointBytes;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _restores;
    private readonly Counter<long> _deferred;
    private readonly Counter<long> _oversized;

    public BackendMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create("Baton");
        _checkpoints = meter.CreateCounter<long>("baton.backend.checkpoints", "{checkpoint}", "Checkpoints sent to the gateway with a response, by baton.checkpoint.kind (whole, delta).");
        _checkpointBytes = meter.CreateCounter<long>("baton.backend.checkpoint.size", "By", "Bytes of state (or of deltas) sent in checkpoints.");
        _rejected = meter.CreateCounter<long>("baton.backend.requests.refused", "{request}", "Requests refused by the library, by baton.reason.");
        _restores = meter.CreateCounter<long>("baton.backend.restores", "{restore}", "Restores accepted.");
        _deferred = meter.CreateCounter<long>("baton.backend.changes.deferred", "{change}", "Session changes that could not lead their own response and ride with the next one.");
        _oversized = meter.CreateCounter<long>("baton.backend.changes.oversized", "{change}", "Session changes rolled back because the state would pass its limit.");
    }

    public void CheckpointSent(int bytes, bool delta)
    {
        _checkpoints.Add(1, new KeyValuePair<string, object?>("baton.checkpoint.kind", delta ? "delta" : "whole"));
        _checkpointBytes.Add(bytes);
    }

    public void Refused(string reason) => _rejected.Add(1, new KeyValuePair<string, object?>("baton.reason", reason));

    public void RestoreAccepted() => _restores.Add(1);

    public void ChangeDeferred() => _deferred.Add(1);

    public void ChangeOversized() => _oversized.Add(1);
}
