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
    BatonMetrics metrics,
    ILogger<SessionStore> logger) : IPinPersistence
{
    private readonly DurabilityMode _durability = options.Value.Checkpoints.Durability;
    private readonly TimeSpan _startupWait = options.Value.Store.RedisStartupWait;

    // Journal writes in flight at once while a starting gateway catches up from Redis: half the write queue.
    private readonly int _catchUpInFlight = Math.Clamp(options.Value.Journal.QueueLength / 2, 1, 256);

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
        if (_durability == DurabilityMode.RiskLossOnGatewayCrash && redis.IsCurrent && await toRedis is { } fast)
        {
            Observe(DropDisagreeingAfterAsync(toJournal, fast, record.SessionId), "checkpoint");
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
        else if (cached is { } held)
        {
            DropIfDisagreeing(outcome, held, record.SessionId);
        }

        return outcome;
    }

    private async Task DropDisagreeingAfterAsync(Task<SaveOutcome> toJournal, SaveOutcome cached, string sessionId)
        => DropIfDisagreeing(await toJournal, cached, sessionId);

    // The tiers disagreeing about the line of changes: the journal fenced what Redis stored (Redis missed a move), or
    // stored what Redis holds from an older epoch (an old owner's change Redis took). Drop Redis's copy, so reads go
    // to the journal until the key is written again. Redis fencing what the journal stored is left alone: only a
    // move (a pin) raises Redis's epoch, so Redis is ahead there — a move the journal missed.
    private void DropIfDisagreeing(SaveOutcome journaled, SaveOutcome cached, string sessionId)
    {
        if ((journaled is SaveOutcome.Fenced or SaveOutcome.Diverged && cached == SaveOutcome.Stored)
            || (journaled == SaveOutcome.Stored && cached == SaveOutcome.Diverged))
        {
            Observe(redis.DeleteAsync(sessionId), "delete");
        }
    }

    public async Task PinAsync(string sessionId, string owner, long epoch, long now)
    {
        var toJournal = journal.PinAsync(new SessionRecord(sessionId, 0, [], owner, now, now) { Epoch = epoch });
        if (toJournal.IsFaulted)
        {
            await toJournal;
        }

        var toRedis = redis.PinAsync(sessionId, owner, epoch, now);
        if (_durability == DurabilityMode.RiskLossOnGatewayCrash && redis.IsCurrent && await toRedis)
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
    /// <paramref name="minimumVersion"/> (the newest version the gateway knows it stored) in at least
    /// <paramref name="minimumEpoch"/> (the epoch the gateway knows the session is pinned in), else the newer of
    /// the two tiers' records — a later epoch, or a later version of the same one. Redis can be behind (a write
    /// that missed its budget, a move it missed) and must never win then.
    /// </summary>
    public async Task<SessionRecord?> GetAsync(string sessionId, long minimumVersion, CancellationToken cancellationToken, long minimumEpoch = 0)
    {
        var (available, record) = await redis.GetAsync(sessionId);
        if (record is not null && record.Version >= minimumVersion && record.Epoch >= minimumEpoch)
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

        // Redis below the known version (a placeholder a pin created on an emptied Redis, say) never wins.
        return record is not null && record.Version >= minimumVersion
            && (journaled is null || IsNewer(record.Epoch, record.Version, journaled.Epoch, journaled.Version)) ? record : journaled;
    }

    /// <summary>A later epoch, or a later version of the same epoch.</summary>
    private static bool IsNewer(long epoch, long version, long thanEpoch, long thanVersion)
        => epoch > thanEpoch || (epoch == thanEpoch && version > thanVersion);

    /// <summary>
    /// Every live session a starting gateway must know. The journal may be behind Redis for sessions it holds —
    /// changes and moves acknowledged on Redis alone (the journal failing, or <c>RiskLossOnGatewayCrash</c>) when
    /// the gateway stopped — so when Redis answers within <c>Baton:Store:RedisStartupWait</c>, what it holds newer
    /// for those sessions is written into the journal first. A session the journal does not hold is never taken
    /// from Redis: it may have ended, been renewed or expired, with Redis's delete missed. A journal found damaged
    /// starts empty and is rebuilt from all Redis holds. A catch-up that fails (Redis or the journal failing
    /// midway) is logged and the gateway starts from the journal: reads still prefer the newer tier.
    /// </summary>
    public async Task<List<StoredPin>> LoadLiveAsync(long cutoff, CancellationToken cancellationToken)
    {
        var pins = await journal.LoadLiveAsync(cutoff, cancellationToken);
        var rebuilding = journal.QuarantinedTo is not null;
        if (!await redis.WaitConnectedAsync(_startupWait, cancellationToken))
        {
            if (rebuilding)
            {
                Log.JournalRebuilt(logger, 0, 0);
            }

            return pins;
        }

        var known = pins.ToDictionary(p => p.SessionId, StringComparer.Ordinal);
        var caughtUp = 0;
        var writes = new List<Task>();
        var scan = redis.Scan();
        try
        {
            await foreach (var record in scan.Records.WithCancellation(cancellationToken))
            {
                // Newer means a later epoch, or a later version of the same one: a Redis copy of an older epoch is an
                // owner's change the journal fenced, or a move Redis missed.
                var held = known.GetValueOrDefault(record.SessionId);
                if (record.LastAccess < cutoff || record.Owner is null || (held is null && !rebuilding)
                    || (held is not null && !IsNewer(record.Epoch, record.Version, held.Epoch, held.Version)))
                {
                    continue;
                }

                // A later epoch moves the pin (owner and epoch); only a later version replaces the state. A placeholder
                // a move left on an emptied Redis (version 0 in the new epoch) moves the pin and keeps the journal's state.
                await WriteBoundedAsync(journal.PinAsync(record));
                var takesState = held is null || record.Version > held.Version;
                if (takesState)
                {
                    await WriteBoundedAsync(journal.SaveAsync(record));
                }

                known[record.SessionId] = takesState
                    ? new StoredPin(record.SessionId, record.Version, record.Owner, record.Epoch, record.LastAccess, record.State.Length)
                    : held! with { Owner = record.Owner, Epoch = record.Epoch, LastAccess = Math.Max(held.LastAccess, record.LastAccess) };
                caughtUp++;
            }

            await Task.WhenAll(writes);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Log.JournalCatchUpFailed(logger, ex.Message);
            return await journal.LoadLiveAsync(cutoff, cancellationToken);
        }

        if (rebuilding)
        {
            Log.JournalRebuilt(logger, caughtUp, scan.Skipped);
        }
        else if (caughtUp > 0 || scan.Skipped > 0)
        {
            Log.JournalCaughtUp(logger, caughtUp, scan.Skipped);
        }

        return [.. known.Values];

        // Bounded in flight: a large Redis never fills the journal's write queue (Baton:Journal:QueueLength).
        async Task WriteBoundedAsync(Task write)
        {
            writes.Add(write);
            if (writes.Count >= _catchUpInFlight)
            {
                await Task.WhenAll(writes);
                writes.Clear();
            }
        }
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
