using System.Diagnostics.Metrics;

namespace Baton.Gateway.Diagnostics;

/// <summary>Baton's one <see cref="Meter"/> and its instruments. Instrument names are public API.</summary>
internal sealed class BatonMetrics
{
    public const string MeterName = "Baton";

    private readonly Counter<long> _sessionsCreated;
    private readonly Counter<long> _cookiesRejected;
    private readonly Counter<long> _sessionsRefused;
    private readonly Counter<long> _sessionsRepinned;
    private readonly Counter<long> _gatewayErrors;
    private readonly Counter<long> _checkpoints;
    private readonly Counter<long> _checkpointBytes;
    private readonly Histogram<double> _checkpointDuration;
    private readonly Counter<long> _protocolHeadersStripped;
    private readonly Histogram<long> _journalBatch;
    private readonly Histogram<double> _journalCommitDuration;
    private readonly Counter<long> _journalErrors;
    private readonly Counter<long> _deltasUnapplicable;
    private readonly Counter<long> _redisUnavailable;
    private readonly Counter<long> _storeFallbacks;
    private readonly Counter<long> _failovers;
    private readonly Counter<long> _moves;
    private readonly Counter<long> _restores;
    private readonly Counter<long> _restoreBytes;
    private readonly Counter<long> _restoreChecks;
    private readonly Counter<long> _resends;
    private readonly Counter<long> _refusals;
    private readonly Counter<long> _drains;
    private readonly Counter<long> _refilled;
    private readonly Counter<long> _clientFailures;
    private readonly Counter<long> _sessionActions;

    public BatonMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _sessionsCreated = meter.CreateCounter<long>("baton.session.created", "{session}", "Sessions issued a new id by the gateway.");
        _cookiesRejected = meter.CreateCounter<long>("baton.session.cookie.rejected", "{cookie}", "Session cookies not adopted, by reason (malformed, bad_signature, unknown).");
        _sessionsRefused = meter.CreateCounter<long>("baton.session.refused", "{request}", "Changes refused because the gateway is at its session limit (session_limit) or its state budget or journal size (state_budget).");
        _sessionsRepinned = meter.CreateCounter<long>("baton.session.repinned", "{session}", "Sessions moved to another destination because theirs was not available.");
        _gatewayErrors = meter.CreateCounter<long>("baton.gateway.errors", "{request}", "Requests failed by the gateway's own code (a store it could not write, an unexpected error), answered 503 instead of 500, by baton.reason. Never held against a destination.");
        _checkpoints = meter.CreateCounter<long>("baton.checkpoint.count", "{checkpoint}", "Checkpoints received, by baton.outcome (stored, stale, fenced, diverged, rejected, failed), and by baton.checkpoint.kind (whole, delta) for those the store answered.");
        _checkpointBytes = meter.CreateCounter<long>("baton.checkpoint.size", "By", "Bytes of session state stored.");
        _checkpointDuration = meter.CreateHistogram<double>("baton.checkpoint.duration", "s", "Time to store a checkpoint in both tiers, as the client waits for it.");
        _protocolHeadersStripped = meter.CreateCounter<long>("baton.protocol.headers.stripped", "{header}", "Protocol headers removed, by baton.direction (request: sent by clients; response).");
        _journalBatch = meter.CreateHistogram<long>("baton.journal.commit.batch_size", "{write}", "Writes committed together in one journal transaction.");
        _journalCommitDuration = meter.CreateHistogram<double>("baton.journal.commit.duration", "s", "Time of one journal commit.");
        _deltasUnapplicable = meter.CreateCounter<long>("baton.checkpoint.delta_unapplicable", "{delta}", "Deltas a tier could not apply onto the state it holds, by baton.tier; the other tier held the change.");
        _journalErrors = meter.CreateCounter<long>("baton.journal.errors", "{error}", "Journal failures, by baton.reason (queue_full, commit, degraded_*, refill_read).");
        _redisUnavailable = meter.CreateCounter<long>("baton.redis.unavailable", "{call}", "Redis calls skipped or failed, by baton.operation and baton.reason (disconnected, budget, error).");
        _failovers = meter.CreateCounter<long>("baton.failover.count", "{request}", "Requests whose destination failed them, by baton.error.");
        _moves = meter.CreateCounter<long>("baton.session.moved", "{session}", "Sessions moved to another destination with their state.");
        _restores = meter.CreateCounter<long>("baton.restore.count", "{restore}", "Restores onto backends, by baton.outcome (ok, failed).");
        _restoreBytes = meter.CreateCounter<long>("baton.restore.size", "By", "Bytes of state restored.");
        _restoreChecks = meter.CreateCounter<long>("baton.restore.check", "{check}", "Checks of a backend process's restore channel, by baton.outcome (accepted, refused).");
        _resends = meter.CreateCounter<long>("baton.resend.count", "{request}", "Requests resent to another destination (or the same one after a restore).");
        _refusals = meter.CreateCounter<long>("baton.failover.refused", "{request}", "Failed-over requests answered with an error, by baton.reason (not_resent, no_destination, body_not_buffered, attempts_exhausted, session_renewed).");
        _clientFailures = meter.CreateCounter<long>("baton.request.client_failed", "{request}", "Requests failed by their client (a body stalled, too large, too slow or malformed; a client gone), answered with their own 4xx, by baton.reason. Never held against a destination.");
        _sessionActions = meter.CreateCounter<long>("baton.session.action", "{session}", "Session identity changes asked by backends, by baton.action (rotate, end, rejected).");
        _refilled = meter.CreateCounter<long>("baton.redis.refilled", "{session}", "Sessions written back into Redis from the journal after Redis restarted or lost its data.");
        _drains = meter.CreateCounter<long>("baton.drain.count", "{change}", "Destinations put into or taken out of drain, by baton.change.");
        _storeFallbacks = meter.CreateCounter<long>("baton.store.fallback.count", "{call}", "Store operations served by the journal alone because Redis could not answer.");
    }

    public void SessionCreated() => _sessionsCreated.Add(1);

    public void CookieRejected(string reason) => _cookiesRejected.Add(1, new KeyValuePair<string, object?>("baton.reason", reason));

    /// <param name="reason">session_limit or state_budget.</param>
    public void SessionRefused(string reason) => _sessionsRefused.Add(1, new KeyValuePair<string, object?>("baton.reason", reason));

    public void SessionRepinned() => _sessionsRepinned.Add(1);

    public void GatewayError(string reason) => _gatewayErrors.Add(1, new KeyValuePair<string, object?>("baton.reason", reason));

    /// <param name="outcome">stored, stale or fenced.</param>
    public void CheckpointCompleted(string outcome, int bytes, TimeSpan duration, bool delta = false)
    {
        _checkpoints.Add(1, new KeyValuePair<string, object?>("baton.outcome", outcome), new KeyValuePair<string, object?>("baton.checkpoint.kind", delta ? "delta" : "whole"));
        if (outcome == "stored")
        {
            _checkpointBytes.Add(bytes);
        }

        _checkpointDuration.Record(duration.TotalSeconds);
    }

    public void CheckpointRejected() => _checkpoints.Add(1, new KeyValuePair<string, object?>("baton.outcome", "rejected"));

    public void CheckpointFailed() => _checkpoints.Add(1, new KeyValuePair<string, object?>("baton.outcome", "failed"));

    public void ProtocolHeadersStripped(string direction, int count) => _protocolHeadersStripped.Add(count, new KeyValuePair<string, object?>("baton.direction", direction));

    public void JournalCommitted(int batchSize, long milliseconds)
    {
        _journalBatch.Record(batchSize);
        _journalCommitDuration.Record(milliseconds / 1000.0);
    }

    public void JournalQueueFull() => _journalErrors.Add(1, new KeyValuePair<string, object?>("baton.reason", "queue_full"));

    public void JournalCommitFailed() => _journalErrors.Add(1, new KeyValuePair<string, object?>("baton.reason", "commit"));

    public void RedisRefillFailed() => _journalErrors.Add(1, new KeyValuePair<string, object?>("baton.reason", "refill_read"));

    public void JournalDegraded(string operation) => _journalErrors.Add(1, new KeyValuePair<string, object?>("baton.reason", "degraded_" + operation));

    public void DeltaUnapplicable(string tier) => _deltasUnapplicable.Add(1, new KeyValuePair<string, object?>("baton.tier", tier));

    public void JournalQuarantined() => _journalErrors.Add(1, new KeyValuePair<string, object?>("baton.reason", "quarantined"));

    public void RedisUnavailable(string operation, string reason)
        => _redisUnavailable.Add(1, new KeyValuePair<string, object?>("baton.operation", operation), new KeyValuePair<string, object?>("baton.reason", reason));

    public void Failover(string error) => _failovers.Add(1, new KeyValuePair<string, object?>("baton.error", error));

    public void SessionMoved() => _moves.Add(1);

    public void Restored(int bytes)
    {
        _restores.Add(1, new KeyValuePair<string, object?>("baton.outcome", "ok"));
        _restoreBytes.Add(bytes);
    }

    public void RestoreFailed() => _restores.Add(1, new KeyValuePair<string, object?>("baton.outcome", "failed"));

    public void RestoreChecked(string outcome) => _restoreChecks.Add(1, new KeyValuePair<string, object?>("baton.outcome", outcome));

    public void Resent() => _resends.Add(1);

    public void ResendRefused() => _refusals.Add(1, new KeyValuePair<string, object?>("baton.reason", "not_resent"));

    public void NoDestination() => _refusals.Add(1, new KeyValuePair<string, object?>("baton.reason", "no_destination"));

    public void SessionGone() => _refusals.Add(1, new KeyValuePair<string, object?>("baton.reason", "session_renewed"));

    /// <summary>A request its client failed: see <c>Failover.AttemptFailure</c> for the reasons.</summary>
    public void ClientFailure(string reason) => _clientFailures.Add(1, new KeyValuePair<string, object?>("baton.reason", reason));

    /// <summary>A failed request that could not be sent again: attempts used up, or a body too large or streamed to keep.</summary>
    public void ResendImpossible(string reason) => _refusals.Add(1, new KeyValuePair<string, object?>("baton.reason", reason));

    public void SessionAction(string action) => _sessionActions.Add(1, new KeyValuePair<string, object?>("baton.action", action));

    public void RedisRefilled(int sessions) => _refilled.Add(sessions);

    public void DrainChanged(bool drained) => _drains.Add(1, new KeyValuePair<string, object?>("baton.change", drained ? "drain" : "undrain"));

    public void StoreFallback(string operation) => _storeFallbacks.Add(1, new KeyValuePair<string, object?>("baton.operation", operation));
}
