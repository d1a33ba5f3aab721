using System.Collections.Concurrent;
using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Store;

/// <summary>The durable tier as the store sees it: a journal, local or shared by several gateways.</summary>
internal interface IDurableTier : ISessionTier
{
    /// <summary>True for a journal other gateways share: it may hold sessions this gateway has not seen.</summary>
    bool IsShared { get; }

    /// <summary>True when a local journal began empty at startup (none was there, or a damaged one was moved aside).</summary>
    bool StartedEmpty { get; }

    /// <summary>Why its last write failed.</summary>
    string LastFailure { get; }

    /// <summary>Longest a write Redis holds too waits for the tier: past it, Redis alone holds the write.</summary>
    TimeSpan CommitWait { get; }

    /// <summary>True when the session ended within the retention; null when the tier cannot say now.</summary>
    Task<bool?> HasEndedAsync(string sessionId, CancellationToken cancellationToken);

    /// <summary>True for a failure of the tier (as opposed to a bug) thrown while scanning it.</summary>
    bool IsUnavailable(Exception exception);

    /// <summary>
    /// Claims a move of the session: a check-and-set that exactly one of any number of concurrent claims wins. A claim
    /// wins when the tier holds the session in <paramref name="fromEpoch"/> or an older epoch and no other move's
    /// restore is under way (its lease runs past <paramref name="now"/>); it then pins the session to
    /// <paramref name="owner"/> in epoch <paramref name="fromEpoch"/> + 1, with the winner's lease
    /// (<paramref name="movingUntil"/>; 0 for none) telling the others to wait for its restore. A session the tier
    /// does not hold, and did not see end, is created empty in that epoch. A local journal serves one gateway and
    /// keeps no lease.
    /// </summary>
    Task<ClaimOutcome> ClaimAsync(string sessionId, string owner, long fromEpoch, long now, long expiresAt, long movingUntil);

    /// <summary>Ends the lease of the move into <paramref name="epoch"/> (its restore is done or given up); nothing once the session is in another epoch.</summary>
    Task<WriteOutcome> ReleaseAsync(string sessionId, long epoch);
}

/// <summary>
/// The two tiers as one store. Writes go to both at once; the journal's answer is authoritative (Redis is
/// a cache of it); reads try Redis within its budget and fall back to the journal. How long a write is
/// awaited follows <c>Baton:Checkpoints:Durability</c>. A write the journal missed while Redis took it is
/// remembered and written into the journal once it can take it again (<see cref="CatchUpAsync"/>), and so is an
/// end either tier missed, so that no tier brings back a session that ended.
/// </summary>
internal sealed class SessionStore : IPinPersistence
{
    private readonly ISessionTier _redis;
    private readonly IDurableTier _journal;
    private readonly BatonMetrics _metrics;
    private readonly ILogger<SessionStore> _logger;
    private readonly DurabilityMode _durability;
    private readonly TimeSpan _startupWait;
    private readonly long _retention;
    private readonly int _maxRemembered;

    // Journal writes in flight at once while a starting gateway catches up from Redis: half the write queue.
    private readonly int _catchUpInFlight;

    // Sessions whose newest write Redis alone holds; ends a tier missed. Bounded by Baton:Sessions:MaxSessions.
    private readonly ConcurrentDictionary<string, byte> _journalBehind = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _journalEndsMissed = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _redisEndsMissed = new(StringComparer.Ordinal);

    // A local journal that began empty and has not been rebuilt from Redis yet: Redis may hold sessions it lacks.
    private bool _rebuildPending;

    // How gateways sharing the tiers tell each other of new pins and ends; none for a gateway on its own.
    private readonly IPinChannel? _channel;

    public SessionStore(ISessionTier redis, IDurableTier journal, IOptions<BatonOptions> options, BatonMetrics metrics, ILogger<SessionStore> logger, IPinChannel? channel = null)
    {
        var settings = options.Value;
        _redis = redis;
        _channel = journal.IsShared ? channel : null;
        _journal = journal;
        _metrics = metrics;
        _logger = logger;
        _durability = settings.Checkpoints.Durability;
        _startupWait = settings.Store.RedisStartupWait;
        _retention = (long)settings.Sessions.Retention.TotalMilliseconds;
        _maxRemembered = settings.Sessions.MaxSessions;
        _catchUpInFlight = Math.Clamp(settings.Journal.QueueLength / 2, 1, 256);
        _rebuildPending = journal.StartedEmpty && !journal.IsShared;
    }

    /// <summary>True while the journal may not grow (see <see cref="ISessionTier.IsFull"/>).</summary>
    public bool IsFull => _journal.IsFull;

    /// <summary>Writes Redis alone holds, waiting for the journal.</summary>
    public int JournalBehind => _journalBehind.Count;

    /// <summary>True while a tier missed a write that <see cref="CatchUpAsync"/> would make.</summary>
    public bool HasMissedWrites => !_journalBehind.IsEmpty || !_journalEndsMissed.IsEmpty || !_redisEndsMissed.IsEmpty;

    /// <summary>When a session used at <paramref name="lastAccess"/> may be dropped by a tier: its last use plus the retention.</summary>
    public long ExpiryOf(long lastAccess) => lastAccess + _retention;

    /// <summary>
    /// Stores a checkpoint; returns once it is as durable as the durability mode asks. When the journal
    /// cannot commit but Redis took the write, the checkpoint is acknowledged on Redis alone (logged and
    /// counted, and written into the journal when it is back); when neither holds it, or the journal's queue is
    /// full, it is not acknowledged (<see cref="StoreUnavailableException"/>).
    /// </summary>
    /// <remarks>
    /// A delta a tier cannot apply (it missed a write, lost its data, or the session's line moved on), or any checkpoint
    /// Redis alone takes, is noted in <paramref name="report"/> before the answer or the exception: the session's next
    /// checkpoint should be whole, which brings that tier back at once. A stored delta's chain, as each tier counts it,
    /// is noted there too. A delta the journal cannot apply while Redis took
    /// it is made good at once where the journal answers: Redis's whole record, which holds the change, is written into the
    /// journal before the change is acknowledged.
    /// </remarks>
    public async Task<SaveOutcome> SaveCheckpointAsync(SessionRecord record, CheckpointReport? report = null)
    {
        var toJournal = _journal.CheckpointAsync(record, report);
        if (toJournal.IsCompleted && toJournal.Result == SaveOutcome.Busy)
        {
            // The journal refused at once (its queue is full): an overload, not a failing disk. Nothing is written
            // anywhere, so the change is not made — never held by Redis alone, where a later read would find it.
            throw new StoreUnavailableException("The journal's write queue is full (Baton:Journal:QueueLength).");
        }

        var toRedis = _redis.CheckpointAsync(record, report);
        if (_durability == DurabilityMode.RiskLossOnGatewayCrash && _redis.IsCurrent && await toRedis is var fast and not (SaveOutcome.Unavailable or SaveOutcome.Unapplicable))
        {
            Observe(SettleAfterAsync(toJournal, fast, record.SessionId, report), "checkpoint");
            return fast;
        }

        var cached = await toRedis;
        var outcome = await JournalAnswerAsync(toJournal, cached == SaveOutcome.Stored, SaveOutcome.Unavailable);
        if (outcome is SaveOutcome.Unavailable or SaveOutcome.Busy or SaveOutcome.Unapplicable)
        {
            if (cached is SaveOutcome.Unavailable or SaveOutcome.Unapplicable)
            {
                if (outcome == SaveOutcome.Unapplicable || cached == SaveOutcome.Unapplicable)
                {
                    report?.NoteTierBehind();
                }

                throw new StoreUnavailableException(outcome == SaveOutcome.Unapplicable || cached == SaveOutcome.Unapplicable
                    ? "Neither tier could apply the delta onto the state it holds."
                    : "Neither tier could store the checkpoint: " + _journal.LastFailure);
            }

            report?.NoteTierBehind();
            if (outcome == SaveOutcome.Unapplicable)
            {
                // The journal holds an older line than the delta's base (it missed a write Redis took): Redis's whole
                // record goes into the journal now, so the change is never acknowledged on Redis alone while the journal
                // answers. Should that fail too, Redis alone holds it until the catch-up or the next, whole, checkpoint.
                if (cached == SaveOutcome.Stored && await JournalTakesRedisCopyAsync(record))
                {
                    return SaveOutcome.Stored;
                }

                BehindOnDelta(record.SessionId, cached == SaveOutcome.Stored);
                return cached;
            }

            Degraded("checkpoint", record.SessionId, cached == SaveOutcome.Stored);
            return cached;
        }

        if (cached == SaveOutcome.Unavailable)
        {
            if (_redis.IsConfigured)
            {
                _metrics.StoreFallback("checkpoint");
            }
        }
        else
        {
            if (outcome == SaveOutcome.Stored && cached == SaveOutcome.Unapplicable)
            {
                report?.NoteTierBehind();
            }

            DropIfDisagreeing(outcome, cached, record.SessionId);
        }

        return outcome;
    }

    // Redis's whole record of the session, holding the delta just stored there, written into the journal; true when the
    // journal holds that version now.
    private async Task<bool> JournalTakesRedisCopyAsync(SessionRecord delta)
    {
        var held = await _redis.GetAsync(delta.SessionId, CancellationToken.None);
        if (held.Record is not { } whole || whole.Version < delta.Version || whole.Epoch != delta.Epoch || Baton.Protocol.Ids.Sha256(whole.State) != whole.Digest)
        {
            return false;
        }

        var journaled = await _journal.CheckpointAsync(whole);
        if (journaled is not (SaveOutcome.Stored or SaveOutcome.Stale))
        {
            return false;
        }

        Log.JournalCaughtUpSession(_logger, Baton.Protocol.Ids.LogHash(delta.SessionId), whole.Version, whole.Epoch);
        return true;
    }

    private async Task SettleAfterAsync(Task<SaveOutcome> toJournal, SaveOutcome cached, string sessionId, CheckpointReport? report)
    {
        var journaled = await toJournal;
        if (journaled is SaveOutcome.Unapplicable or SaveOutcome.Unavailable or SaveOutcome.Busy)
        {
            report?.NoteTierBehind();
        }

        if (journaled == SaveOutcome.Unapplicable)
        {
            BehindOnDelta(sessionId, cached == SaveOutcome.Stored);
            return;
        }

        if (journaled is SaveOutcome.Unavailable or SaveOutcome.Busy)
        {
            Degraded("checkpoint", sessionId, cached == SaveOutcome.Stored);
            return;
        }

        DropIfDisagreeing(journaled, cached, sessionId);
    }

    // A delta the journal could not apply while Redis took it: counted, logged, and remembered for the catch-up, which
    // writes Redis's whole record into the journal.
    private void BehindOnDelta(string sessionId, bool redisHoldsIt)
    {
        _metrics.DeltaUnapplicable(_journal.Name);
        Log.DeltaUnapplicable(_logger, Baton.Protocol.Ids.LogHash(sessionId), _journal.Name);
        if (redisHoldsIt)
        {
            Remember(_journalBehind, sessionId);
        }
    }

    // The tiers disagreeing about the line of changes: the journal fenced what Redis stored (Redis missed a move), or
    // stored what Redis holds from an older epoch (an old owner's change Redis took), or stored a delta Redis could not
    // apply (Redis holds an older line, or nothing). Drop Redis's copy, so reads go to the journal until the key is
    // written whole again. Redis fencing what the journal stored is left alone: only a move (a pin) raises Redis's
    // epoch, so Redis is ahead there — a move the journal missed.
    private void DropIfDisagreeing(SaveOutcome journaled, SaveOutcome cached, string sessionId)
    {
        if (journaled == SaveOutcome.Stored && cached == SaveOutcome.Unapplicable)
        {
            _metrics.DeltaUnapplicable(_redis.Name);
        }

        if ((journaled is SaveOutcome.Fenced or SaveOutcome.Diverged && cached == SaveOutcome.Stored)
            || (journaled == SaveOutcome.Stored && cached is SaveOutcome.Diverged or SaveOutcome.Unapplicable))
        {
            Observe(_redis.EndAsync(sessionId), "delete");
        }
    }

    // A write Redis alone holds: counted, logged, and remembered for the journal's catch-up.
    private void Degraded(string operation, string sessionId, bool redisHoldsIt)
    {
        _metrics.JournalDegraded(operation);
        Log.JournalDegraded(_logger, operation, _journal.LastFailure);
        if (redisHoldsIt)
        {
            Remember(_journalBehind, sessionId);
        }
    }

    private void Remember(ConcurrentDictionary<string, byte> set, string sessionId)
    {
        if (set.Count < _maxRemembered)
        {
            set.TryAdd(sessionId, 0);
        }
    }

    /// <summary>
    /// Claims a move (see <see cref="IPinPersistence.ClaimAsync"/>). The journal decides who wins; Redis, a cache of
    /// it, is told after. A journal that cannot answer decides nothing: a shared one's claim is then unavailable
    /// (another gateway may be claiming the same move), while this gateway's own journal, whose moves of a session take
    /// turns in this process, leaves the move to Redis alone until it catches up.
    /// </summary>
    public async Task<ClaimOutcome> ClaimAsync(string sessionId, string owner, long fromEpoch, long now, TimeSpan lease)
    {
        var expires = ExpiryOf(now);
        // Only gateways sharing the journal wait on a lease: this gateway's own moves of a session take turns in memory.
        var movingUntil = lease > TimeSpan.Zero && _journal.IsShared ? now + (long)lease.TotalMilliseconds : 0;
        var claimed = await _journal.ClaimAsync(sessionId, owner, fromEpoch, now, expires, movingUntil);
        if (claimed is ClaimOutcome.Lost || (claimed is not ClaimOutcome.Won && _journal.IsShared))
        {
            return claimed;
        }

        var cached = await _redis.MoveAsync(sessionId, owner, fromEpoch + 1, now, expires);
        if (claimed != ClaimOutcome.Won)
        {
            if (cached != WriteOutcome.Written)
            {
                return claimed;
            }

            Degraded("pin", sessionId, redisHoldsIt: true);
        }

        if (movingUntil == 0)
        {
            _channel?.Announce(new PinNotice(sessionId, owner, fromEpoch + 1));
        }

        return ClaimOutcome.Won;
    }

    public async Task ReleaseAsync(string sessionId, string? owner, long epoch)
    {
        if (_journal.IsShared)
        {
            // Best effort: a lease not released runs out, and the others go ahead then.
            await _journal.ReleaseAsync(sessionId, epoch);
        }

        if (owner is not null)
        {
            _channel?.Announce(new PinNotice(sessionId, owner, epoch));
        }
    }

    public bool IsListening => _channel?.IsListening == true;

    public void Listen(Action<PinNotice> onNotice, Action onMissed) => _channel?.Listen(onNotice, onMissed);

    // A journal write Redis holds too is awaited at most the journal's timeout (its driver may take longer to give up
    // on a hung server); past it Redis alone holds it and the journal catches up. One Redis does not hold is awaited to
    // its end: answering "not made" for a write the journal may still commit would leave the journal holding a change
    // the client was told did not happen.
    private async Task<T> JournalAnswerAsync<T>(Task<T> toJournal, bool redisHoldsIt, T unavailable)
    {
        if (!redisHoldsIt || toJournal.IsCompleted)
        {
            return await toJournal;
        }

        try
        {
            return await toJournal.WaitAsync(_journal.CommitWait);
        }
        catch (TimeoutException)
        {
            return unavailable;
        }
    }

    public void Touch(string sessionId, long now)
    {
        var expires = ExpiryOf(now);
        Observe(_journal.TouchAsync(sessionId, now, expires), "touch");
        Observe(_redis.TouchAsync(sessionId, now, expires), "touch");
    }

    public void End(string sessionId) => Observe(EndAsync(sessionId), "delete");

    /// <summary>
    /// Forgets the session in both tiers and tells the other gateways; done once both tiers answered. It does not throw
    /// for a tier that missed it: that end is remembered and written when the tier can take it (<see cref="CatchUpAsync"/>).
    /// </summary>
    public async Task EndAsync(string sessionId)
    {
        _channel?.Announce(new PinNotice(sessionId, null, 0));
        _journalBehind.TryRemove(sessionId, out _);
        var toJournal = _journal.EndAsync(sessionId);
        var toRedis = _redis.EndAsync(sessionId);
        if (await toJournal != WriteOutcome.Written)
        {
            Remember(_journalEndsMissed, sessionId);
        }

        if (await toRedis != WriteOutcome.Written && _redis.IsConfigured)
        {
            Remember(_redisEndsMissed, sessionId);
        }
    }

    /// <summary>
    /// Writes into the tiers what they missed: ends first (so nothing that ended comes back), then the sessions
    /// whose newest write only Redis holds, copied from Redis into the journal under its check-and-set. Stops at
    /// the first write a tier still cannot take; what is left waits for the next call. Returns how many were written.
    /// </summary>
    public async Task<int> CatchUpAsync(CancellationToken cancellationToken)
    {
        var written = 0;
        foreach (var id in _journalEndsMissed.Keys)
        {
            if (await _journal.EndAsync(id) != WriteOutcome.Written)
            {
                return written;
            }

            _journalEndsMissed.TryRemove(id, out _);
            written++;
        }

        foreach (var id in _redisEndsMissed.Keys)
        {
            if (await _redis.EndAsync(id) != WriteOutcome.Written)
            {
                break;
            }

            _redisEndsMissed.TryRemove(id, out _);
            written++;
        }

        foreach (var id in _journalBehind.Keys)
        {
            cancellationToken.ThrowIfCancellationRequested();

            // Forgotten before Redis is read: a write Redis alone takes from now on (a delta the journal cannot apply yet)
            // remembers the session again, so a later pass copies that too.
            _journalBehind.TryRemove(id, out _);
            var held = await _redis.GetAsync(id, cancellationToken);
            if (!held.Available)
            {
                Remember(_journalBehind, id);
                return written;
            }

            // A Redis copy whose state does not match its digest (damaged in Redis) is never copied over the journal's.
            if (held.Record is { Owner: { } owner } record && Baton.Protocol.Ids.Sha256(record.State) == record.Digest)
            {
                if (await _journal.MoveAsync(id, owner, record.Epoch, record.LastAccess, record.ExpiresAt) != WriteOutcome.Written
                    || await _journal.CheckpointAsync(record) is SaveOutcome.Unavailable or SaveOutcome.Busy)
                {
                    Remember(_journalBehind, id);
                    return written;
                }

                written++;
                Log.JournalCaughtUpSession(_logger, Baton.Protocol.Ids.LogHash(id), record.Version, record.Epoch);
            }
        }

        return written;
    }

    /// <summary>
    /// The session's newest checkpoint: from Redis when it answers in budget with at least
    /// <paramref name="minimumVersion"/> (the newest version the gateway knows it stored) in at least
    /// <paramref name="minimumEpoch"/> (the epoch the gateway knows the session is pinned in), else the newer of
    /// the two tiers' records — a later epoch, or a later version of the same one. Redis can be behind (a write
    /// that missed its budget, a move it missed) and must never win then. With the journal unreadable, only a Redis
    /// copy at the known version will do; anything less is <see cref="StoreUnavailableException"/>, never an
    /// empty session.
    /// </summary>
    /// <remarks>
    /// With <paramref name="newestOfBoth"/> (a move's restore where other gateways share the journal: the version this
    /// one knows may lag another's changes, which a Redis failover can leave out of Redis) the journal is read even when
    /// Redis's copy is at the known version, and the newer wins; a journal that cannot be read leaves Redis's copy.
    /// With <paramref name="refuseEnded"/> (a move's restore), a session a shared journal no longer holds but marks ended
    /// is <see cref="SessionEndedException"/>, whatever copy Redis still holds (it missed the delete): an ended session is
    /// never restored.
    /// </remarks>
    public async Task<SessionRecord?> GetAsync(string sessionId, long minimumVersion, CancellationToken cancellationToken, long minimumEpoch = 0, bool newestOfBoth = false, bool refuseEnded = false)
    {
        var fast = await _redis.GetAsync(sessionId, cancellationToken);

        // A Redis copy whose state no longer matches its digest (damaged in Redis) is no copy: the journal's is read.
        var record = fast.Record is { } held && Baton.Protocol.Ids.Sha256(held.State) != held.Digest ? null : fast.Record;
        var known = record is not null && record.Version >= minimumVersion && record.Epoch >= minimumEpoch;
        if (known && !newestOfBoth)
        {
            return record;
        }

        var durable = await _journal.GetAsync(sessionId, cancellationToken);
        if (!durable.Available && known)
        {
            return record;
        }

        if (!durable.Available)
        {
            throw new StoreUnavailableException("The journal could not be read, and Redis holds no copy at the session's known version.");
        }

        var journaled = durable.Record;
        if (refuseEnded && journaled is null && record is not null && _journal.IsShared)
        {
            switch (await _journal.HasEndedAsync(sessionId, cancellationToken))
            {
                case null:
                    throw new StoreUnavailableException("The journal could not say whether the session ended.");
                case true:
                    throw new SessionEndedException();
            }
        }

        // A read Redis could not answer, or one the journal answered better. A session neither tier holds
        // (never changed, or a restore check's throwaway) is no fallback.
        if (_redis.IsConfigured && (!fast.Available || journaled is not null))
        {
            _metrics.StoreFallback(fast.Available ? "read_behind" : "read");
        }

        // Redis below the known version (a placeholder a pin created on an emptied Redis, say) never wins.
        // A journal copy below the version this gateway knows it stored is behind (that change is held by Redis alone,
        // and a move's claim may since have raised the row's epoch without its state): Redis's copy at the known version wins.
        return record is not null && record.Version >= minimumVersion
            && (journaled is null || journaled.Version < minimumVersion || SessionPosition.IsNewer(record.Epoch, record.Version, journaled.Epoch, journaled.Version)) ? record : journaled;
    }

    public bool MayHoldUnknown => _journal.IsShared || (Volatile.Read(ref _rebuildPending) && _redis.IsConfigured);

    public bool IsShared => _journal.IsShared;

    /// <summary>
    /// A session another gateway created, or one a local journal lost. A shared journal that holds it gives it, or
    /// Redis's copy where that is newer. One Redis alone holds was acknowledged while the journal could not take it
    /// (on this gateway or another): it lives unless the journal marks it ended, and it is written into the journal
    /// by this gateway's catch-up. Without the journal's answer, Redis's copy is taken.
    /// </summary>
    public async Task<SessionSummary?> FindAsync(string sessionId, CancellationToken cancellationToken)
    {
        var fromRedis = _redis.GetAsync(sessionId, cancellationToken);
        var journal = _journal.IsShared ? await _journal.GetAsync(sessionId, cancellationToken) : TierRead.Unavailable;
        var redis = await fromRedis;
        var cached = redis.Record;
        if (!journal.Available)
        {
            // A shared journal's sessions are not all in Redis (it may have restarted empty or failed over): without the
            // journal, only a copy Redis holds says anything.
            return _journal.IsShared && (!redis.Available || cached is null)
                ? throw new StoreUnavailableException("Neither tier could say whether the session lives.")
                : cached?.Summary;
        }

        if (journal.Record is { } held)
        {
            // Only the journal knows whether a move's restore is under way in its epoch.
            return cached is not null && cached.Summary.IsNewerThan(held.Summary)
                ? cached.Summary with { MovingUntil = cached.Epoch == held.Epoch ? held.MovingUntil : 0 }
                : held.Summary;
        }

        if (cached?.Owner is null)
        {
            return null;
        }

        switch (await _journal.HasEndedAsync(sessionId, cancellationToken))
        {
            case null:
                throw new StoreUnavailableException("The journal could not say whether the session ended.");
            case true:
                return null;
        }

        Remember(_journalBehind, sessionId);
        return cached.Summary;
    }

    /// <summary>
    /// Every live session a starting gateway must know. The journal may be behind Redis for sessions it holds —
    /// changes and moves acknowledged on Redis alone (the journal failing, or <c>RiskLossOnGatewayCrash</c>) when
    /// the gateway stopped — so when Redis answers within <c>Baton:Store:RedisStartupWait</c>, what it holds newer
    /// for those sessions is written into the journal first. A session the journal does not hold is never taken
    /// from Redis: it may have ended, been renewed or expired, with Redis's delete missed — except into a local
    /// journal that began empty (a new disk, or a damaged journal moved aside), which is rebuilt from all Redis holds. A catch-up
    /// that fails (Redis or the journal failing midway) is logged and the gateway starts from the journal: reads
    /// still prefer the newer tier.
    /// </summary>
    public async Task<List<SessionSummary>> LoadLiveAsync(long cutoff, CancellationToken cancellationToken)
    {
        var rebuilding = _journal.StartedEmpty && !_journal.IsShared;
        List<SessionSummary> pins;
        try
        {
            pins = await LoadJournalAsync(cutoff, cancellationToken);
        }
        catch (Exception ex) when (_journal.IsShared && _journal.IsUnavailable(ex))
        {
            // A shared journal down at startup: the gateway serves, and sessions come back as the journal does.
            Log.SharedJournalUnreadable(_logger, ex.Message);
            return [];
        }

        if (!await _redis.WaitAvailableAsync(_startupWait, cancellationToken))
        {
            if (rebuilding)
            {
                Log.JournalRebuilt(_logger, 0, 0);
            }

            return pins;
        }

        var known = pins.ToDictionary(p => p.SessionId, StringComparer.Ordinal);
        var caughtUp = 0;
        var writes = new List<Task<bool>>();
        var scan = _redis.ScanLive(cutoff);
        try
        {
            await foreach (var summary in scan.Records.WithCancellation(cancellationToken))
            {
                // Newer means a later epoch, or a later version of the same one: a Redis copy of an older epoch is an
                // owner's change the journal fenced, or a move Redis missed.
                var held = known.GetValueOrDefault(summary.SessionId);
                if (summary.Owner is null || (held is null && !rebuilding) || (held is not null && !summary.IsNewerThan(held)))
                {
                    continue;
                }

                // A later epoch moves the pin (owner and epoch); only a later version replaces the state. A placeholder
                // a move left on an emptied Redis (version 0 in the new epoch) moves the pin and keeps the journal's state.
                var takesState = held is null || summary.Version > held.Version;
                await WriteBoundedAsync(TakeFromRedisAsync(summary, takesState, cancellationToken));
                known[summary.SessionId] = takesState
                    ? summary
                    : held! with { Owner = summary.Owner, Epoch = summary.Epoch, LastAccess = Math.Max(held.LastAccess, summary.LastAccess) };
                caughtUp++;
            }

            if ((await Task.WhenAll(writes)).Contains(false))
            {
                throw new StoreUnavailableException("The journal could not take a session from Redis: " + _journal.LastFailure);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Log.JournalCatchUpFailed(_logger, ex.Message);
            return await LoadJournalAsync(cutoff, cancellationToken);
        }

        if (rebuilding)
        {
            Log.JournalRebuilt(_logger, caughtUp, scan.Skipped);

            // Rebuilt: the journal holds what Redis held. Only sessions Redis did not answer for are looked up later.
            Volatile.Write(ref _rebuildPending, scan.Skipped > 0);
        }
        else if (caughtUp > 0 || scan.Skipped > 0)
        {
            Log.JournalCaughtUp(_logger, caughtUp, scan.Skipped);
        }

        return [.. known.Values];

        // Bounded in flight: a large Redis never fills the journal's write queue (Baton:Journal:QueueLength).
        async Task WriteBoundedAsync(Task<bool> write)
        {
            writes.Add(write);
            if (writes.Count >= _catchUpInFlight)
            {
                if ((await Task.WhenAll(writes)).Contains(false))
                {
                    throw new StoreUnavailableException("The journal could not take a session from Redis: " + _journal.LastFailure);
                }

                writes.Clear();
            }
        }
    }

    private async Task<List<SessionSummary>> LoadJournalAsync(long cutoff, CancellationToken cancellationToken)
    {
        var pins = new List<SessionSummary>();
        await foreach (var pin in _journal.ScanLive(cutoff).Records.WithCancellation(cancellationToken))
        {
            pins.Add(pin);
        }

        return pins;
    }

    // The pin, and the state when it is newer, of a session Redis holds ahead of the journal.
    private async Task<bool> TakeFromRedisAsync(SessionSummary summary, bool takesState, CancellationToken cancellationToken)
    {
        if (await _journal.MoveAsync(summary.SessionId, summary.Owner!, summary.Epoch, summary.LastAccess, ExpiryOf(summary.LastAccess)) != WriteOutcome.Written)
        {
            return false;
        }

        if (!takesState)
        {
            return true;
        }

        var held = await _redis.GetAsync(summary.SessionId, cancellationToken);
        if (!held.Available)
        {
            throw new StoreUnavailableException("Redis stopped answering during the catch-up.");
        }

        // A damaged copy (its state not matching its digest) is left out: the journal keeps what it holds.
        return held.Record is not { } record || Baton.Protocol.Ids.Sha256(record.State) != record.Digest
            || await _journal.CheckpointAsync(record) is not (SaveOutcome.Unavailable or SaveOutcome.Busy);
    }

    private void Observe(Task task, string operation)
    {
        task.ContinueWith(
            t => Log.BackgroundWriteFailed(_logger, operation, t.Exception!.GetBaseException()),
            CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }
}

/// <summary>The store cannot take or give a session now (neither tier holds a write, the journal's queue is full, the journal cannot be read).</summary>
internal sealed class StoreUnavailableException(string message) : Exception(message);

/// <summary>The session ended (logout, a renewed id): the shared journal says so, whatever copy a tier still holds.</summary>
internal sealed class SessionEndedException() : Exception("The session ended or was renewed; it is not restored.");
