using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Store;

/// <summary>
/// Watches who the Redis tier is. When it comes back different — restarted empty, or a replica promoted
/// without Baton's marker — every live session is written back into it from the journal, in the
/// background; when it is the same Redis but missed writes (unreachable, hung or over budget for a
/// while), the sessions written since are. The journal's record wins over an older epoch in Redis (one that
/// missed a move) and over an older version, and never over a newer one, so a write that raced the refill is
/// never overwritten. Each check that finds Redis holding everything confirms it current. A
/// refill the journal cannot feed is logged and tried again at the next check; it never stops the gateway.
/// </summary>
internal sealed class RedisRefill(
    RedisTier redis,
    JournalTier journal,
    IOptions<BatonOptions> options,
    TimeProvider time,
    BatonMetrics metrics,
    ILogger<RedisRefill> logger) : BackgroundService
{
    // Sessions written from a little before Redis first missed a write are written again (clocks of the
    // same host, so the margin only covers the write that was in flight).
    private static readonly TimeSpan MissedWriteMargin = TimeSpan.FromSeconds(5);

    // After a refill that could not be finished, the next tries come later and later (up to MaxRetryDelay), so a
    // Redis that keeps refusing a write, or a journal that keeps failing, is not read whole at every check.
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromMinutes(1);

    private string? _knownRunId;
    private TimeSpan _retryDelay;
    private long _retryAt;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!redis.IsConfigured)
        {
            return;
        }

        using var timer = new PeriodicTimer(options.Value.Store.RedisCheckInterval, time);
        try
        {
            do
            {
                await CheckAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task CheckAsync(CancellationToken cancellationToken)
    {
        if (time.GetTimestamp() < _retryAt)
        {
            return;
        }

        // Read before looking: a write Redis misses from here on keeps it unconfirmed until the next check.
        var missedWrites = redis.MissedWrites;
        if (await redis.IdentifyAsync() is not { } identity)
        {
            return;
        }

        // Sessions used within the idle timeout: an expired one must not come back into Redis (a session whose
        // stored last use lags a little is left out and read from the journal when it is needed).
        var cutoff = (time.GetUtcNow() - options.Value.Sessions.IdleTimeout).ToUnixTimeMilliseconds();
        string reason;
        long? missedSince = null;
        if (identity.RunId == _knownRunId && identity.MarkerPresent)
        {
            // The same Redis, with its data: only what it missed while unreachable, hung or slow needs writing.
            if (redis.TakeFirstMissedWrite() is not { } firstMissed)
            {
                redis.ConfirmCurrent(missedWrites);
                return;
            }

            reason = "Redis missed writes while unreachable or slow";
            missedSince = firstMissed;
            cutoff = Math.Max(cutoff, firstMissed - (long)MissedWriteMargin.TotalMilliseconds);
        }
        else
        {
            redis.TakeFirstMissedWrite();
            reason = _knownRunId is null ? "first connection" : identity.RunId != _knownRunId ? "Redis restarted or was replaced" : "Redis lost its data";
        }

        var started = time.GetTimestamp();
        var written = 0;
        var unanswered = 0;
        try
        {
            await foreach (var record in journal.ReadLiveAsync(cutoff, cancellationToken))
            {
                switch (await redis.RefillAsync(record))
                {
                    case true:
                        written++;
                        break;
                    case null:
                        unanswered++;
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            // The journal could not be read (a failing disk, a file gone): the gateway serves on, Redis stays
            // unmarked and what it missed stays noted, so the next check refills it again.
            redis.NoteMissedWrite(missedSince ?? cutoff);
            metrics.RedisRefilled(written);
            metrics.RedisRefillFailed();
            Log.RedisRefillFailed(logger, reason, ex.Message);
            RetryLater();
            return;
        }

        if (unanswered > 0)
        {
            // Redis refused or dropped some of the writes: it is not marked, and the same miss is noted again (not
            // widened), so a later check writes the same sessions again (a write that landed is not newer the second time).
            redis.NoteMissedWrite(missedSince ?? cutoff);
            metrics.RedisRefilled(written);
            Log.RedisRefillIncomplete(logger, reason, written, unanswered);
            RetryLater();
            return;
        }

        // Marked only once refilled: a refill cut short by another outage is done again.
        if (await redis.MarkAsync())
        {
            _knownRunId = identity.RunId;
            redis.ConfirmCurrent(missedWrites);
        }

        _retryDelay = TimeSpan.Zero;
        metrics.RedisRefilled(written);
        Log.RedisRefilled(logger, reason, written, time.GetElapsedTime(started));
    }

    private void RetryLater()
    {
        var interval = options.Value.Store.RedisCheckInterval;
        _retryDelay = _retryDelay == TimeSpan.Zero ? interval : TimeSpan.FromTicks(Math.Min(_retryDelay.Ticks * 2, Math.Max(MaxRetryDelay.Ticks, interval.Ticks)));
        _retryAt = time.GetTimestamp() + (long)(_retryDelay.TotalSeconds * time.TimestampFrequency);
    }
}
