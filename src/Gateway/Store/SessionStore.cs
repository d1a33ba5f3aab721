using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Store;

/// <summary>
/// The two tiers as one store. Writes go to both at once; the journal's answer is authoritative (Redis is
/// a cache of it); reads try Redis within its budget and fall back to the journal. How long a write is
/// awaited follows <c>Baton:Checkpoints:Durability</c>.
/// </summary>
internal sealed class SessionStore(
    JournalTier journal,
    RedisTier redis,
    IOptions<BatonOptions> options,
    TimeProvider time,
    BatonMetrics metrics,
    ILogger<SessionStore> logger) : IPinPersistence
{
    /// <summary>Longest a starting gateway waits for Redis to rebuild a quarantined journal from.</summary>
    private static readonly TimeSpan RebuildWait = TimeSpan.FromSeconds(10);

    private readonly DurabilityMode _durability = options.Value.Checkpoints.Durability;

    public JournalTier Journal => journal;

    public RedisTier Redis => redis;

    /// <summary>
    /// Stores a checkpoint; returns once it is as durable as the durability mode asks. When the journal
    /// cannot commit but Redis took the write, the checkpoint is acknowledged on Redis alone (logged and
    /// counted); when neither holds it, or the journal's queue is full, it is not acknowledged
    /// (<see cref="JournalUnavailableException"/>).
    /// </summary>
    public async Task<SaveOutcome> SaveCheckpointAsync(SessionRecord record)
    {
        var toJournal = journal.SaveAsync(record);
        if (toJournal.IsFaulted)
        {
            // The journal refused at once (its queue is full): an overload, not a failing disk. Nothing is written
            // anywhere, so the change is not made — never held by Redis alone, where a later read would find it.
            await toJournal;
        }

        var toRedis = redis.SaveAsync(record);
        if (_durability == DurabilityMode.RiskLossOnGatewayCrash && await toRedis is { } fast)
        {
            Observe(toJournal, "checkpoint");
            return fast;
        }

        SaveOutcome outcome;
        try
        {
            outcome = await toJournal;
        }
        catch (JournalUnavailableException ex)
        {
            if (await toRedis is not { } held)
            {
                throw;
            }

            metrics.JournalDegraded("checkpoint");
            Log.JournalDegraded(logger, "checkpoint", ex.Message);
            return held;
        }

        var cached = await toRedis;
        if (cached is null && redis.IsConfigured)
        {
            metrics.StoreFallback("checkpoint");
        }
        else if (outcome == SaveOutcome.Fenced && cached == SaveOutcome.Stored)
        {
            // Redis missed the session's move (it was down then) and took the old owner's change: drop it, so
            // reads go to the journal until the key is written again.
            Observe(redis.DeleteAsync(record.SessionId), "delete");
        }

        return outcome;
    }

    public async Task PinAsync(string sessionId, string owner, long epoch, long now)
    {
        var toJournal = journal.PinAsync(new SessionRecord(sessionId, 0, [], owner, now, now) { Epoch = epoch });
        if (toJournal.IsFaulted)
        {
            await toJournal;
        }

        var toRedis = redis.PinAsync(sessionId, owner, epoch, now);
        if (_durability == DurabilityMode.RiskLossOnGatewayCrash && await toRedis)
        {
            Observe(toJournal, "pin");
            return;
        }

        try
        {
            await toJournal;
        }
        catch (JournalUnavailableException ex)
        {
            if (!await toRedis)
            {
                throw;
            }

            metrics.JournalDegraded("pin");
            Log.JournalDegraded(logger, "pin", ex.Message);
        }

        await toRedis;
    }

    public void Touch(string sessionId, long now)
    {
        Observe(journal.TouchAsync(sessionId, now), "touch");
        Observe(redis.TouchAsync(sessionId, now), "touch");
    }

    public void Delete(string sessionId)
    {
        Observe(journal.DeleteAsync(sessionId), "delete");
        Observe(redis.DeleteAsync(sessionId), "delete");
    }

    /// <summary>
    /// The session's newest checkpoint: from Redis when it answers in budget with at least
    /// <paramref name="minimumVersion"/> (the newest version the gateway knows it stored), else from the
    /// journal. Redis can be behind — a write that missed its budget — and must never win then.
    /// </summary>
    public async Task<SessionRecord?> GetAsync(string sessionId, long minimumVersion, CancellationToken cancellationToken)
    {
        var (available, record) = await redis.GetAsync(sessionId);
        if (record is not null && record.Version >= minimumVersion)
        {
            return record;
        }

        var journaled = await journal.GetAsync(sessionId, cancellationToken);

        // A read Redis could not answer, or one the journal answered better. A session neither tier holds
        // (never changed, or a restore check's throwaway) is no fallback.
        if (redis.IsConfigured && (!available || journaled is not null))
        {
            metrics.StoreFallback(available ? "read_behind" : "read");
        }

        return record is not null && (journaled is null || record.Version > journaled.Version) ? record : journaled;
    }

    public async Task<List<StoredPin>> LoadLiveAsync(long cutoff, CancellationToken cancellationToken)
    {
        if (journal.QuarantinedTo is not null)
        {
            await RebuildFromRedisAsync(cancellationToken);
        }

        return await journal.LoadLiveAsync(cutoff, cancellationToken);
    }

    /// <summary>A journal found damaged at startup starts empty: Redis holds the sessions it can give back.</summary>
    private async Task RebuildFromRedisAsync(CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + RebuildWait;
        while (redis.IsConfigured && !redis.IsConnected && time.GetUtcNow() < deadline)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken);
        }

        var rebuilt = 0;
        await foreach (var record in redis.ScanAsync().WithCancellation(cancellationToken))
        {
            if (record.Owner is not null)
            {
                await journal.PinAsync(record);
            }

            await journal.SaveAsync(record);
            rebuilt++;
        }

        Log.JournalRebuilt(logger, rebuilt);
    }

    private void Observe(Task task, string operation)
    {
        task.ContinueWith(
            t => Log.BackgroundWriteFailed(logger, operation, t.Exception!.GetBaseException()),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }
}
