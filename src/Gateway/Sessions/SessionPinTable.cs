using System.Collections.Concurrent;
using Baton.Gateway.Configuration;
using Baton.Gateway.Store;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Sessions;

/// <summary>
/// The pin table: in memory for the hot path, written through to the store for durability once a session
/// is kept (anonymous sessions live in memory only). Pins are written when they change; idle timers are
/// written at most every <see cref="TouchInterval"/>, so a restarted gateway may keep a session up to that
/// much longer than its idle timeout, never shorter.
/// </summary>
internal sealed class SessionPinTable(IOptions<BatonOptions> options, TimeProvider timeProvider, IPinPersistence persistence) : ISessionPinTable, IDisposable
{
    private readonly ConcurrentDictionary<SessionId, Entry> _entries = new();
    private readonly long _idleTimeout = (long)options.Value.Sessions.IdleTimeout.TotalMilliseconds;
    private readonly int _maxSessions = options.Value.Sessions.MaxSessions;
    private readonly int _maxAnonymous = options.Value.Sessions.MaxAnonymousSessions;
    private readonly long _maxStateBytes = options.Value.Sessions.MaxTotalStateBytes;
    private readonly int _maxDeltaChain = options.Value.Checkpoints.MaxDeltaChain;

    // Anonymous sessions oldest first, for eviction; kept or expired ones are skipped when they come up.
    private readonly ConcurrentQueue<(SessionId Id, Entry Entry)> _anonymousOrder = new();

    // Rotations of the last idle timeout (old id to new): the old ids are dead, and a change of one stored while it
    // rotated waits for the rotation to tell whether the new id carries it.
    private readonly ConcurrentDictionary<SessionId, Renaming> _renamed = new();

    // The sessions that ended in the last idle timeout, here or as others said (never loaded, pinned or restored
    // again while a tier may still hold them), and, where the tiers may hold sessions this table never loaded, the
    // lookups under way (one per id).
    private readonly ConcurrentDictionary<SessionId, long> _ended = new();
    private readonly ConcurrentDictionary<SessionId, Lazy<Task<SessionSummary?>>> _lookups = new();

    // Ids the tiers did not hold when last looked up, for a few seconds: a cookie replayed in a loop costs one lookup
    // per interval, not one per request. Lookups at once are bounded too, so they never take the journal's
    // connections from its writer (at most half of Baton:Journal:MaxConnections).
    private readonly ConcurrentDictionary<SessionId, long> _notFound = new();
    private readonly SemaphoreSlim _lookupSlots = new(Math.Max(1, options.Value.Journal.MaxConnections / 2));
    private readonly TimeSpan _lookupWait = options.Value.Journal.CommandTimeout;
    private int _pendingLookups;

    // Bumped whenever the gateways' notice channel comes back after it was lost (see Trusted).
    private long _coherence;

    // ConcurrentDictionary.Count takes every lock; keep our own counts for the hot path.
    private int _count;
    private int _anonymous;
    private long _stateBytes;

    /// <summary>How stale a session's stored last-access time may get: an eighth of the idle timeout.</summary>
    public long TouchInterval => _idleTimeout / 8;

    public int Count => Volatile.Read(ref _count);

    public int AnonymousCount => Volatile.Read(ref _anonymous);

    public long StateBytes => Interlocked.Read(ref _stateBytes);

    public KeepOutcome TryKeep(SessionId id, int stateBytes, long version, bool mayGrow = true)
    {
        if (!_entries.TryGetValue(id, out var entry))
        {
            return KeepOutcome.Gone;
        }

        var (previous, previousVersion) = (entry.StateBytes, entry.StateVersion);
        switch (ResizeState(entry, stateBytes, version, mayGrow))
        {
            case KeepOutcome.Kept:
                break;
            case var refused:
                return refused;
        }

        if (entry.IsKept)
        {
            return KeepOutcome.Kept;
        }

        // Reserve a slot first, so concurrent keeps never pass the limit.
        if (Interlocked.Increment(ref _count) > _maxSessions)
        {
            Interlocked.Decrement(ref _count);
            lock (entry)
            {
                ResizeState(entry, previous, version, mayGrow: true);
                entry.StateVersion = previousVersion;
            }

            return KeepOutcome.SessionLimit;
        }

        if (entry.TryKeep())
        {
            Interlocked.Decrement(ref _anonymous);
            return KeepOutcome.Kept;
        }

        // Kept by a concurrent call meanwhile (fine), or evicted or expired (then it is gone: no slot, no state).
        Interlocked.Decrement(ref _count);
        if (entry.IsKept)
        {
            return KeepOutcome.Kept;
        }

        ReleaseState(entry);
        return KeepOutcome.Gone;
    }

    // Counts the entry's state at the size of its newest version: a checkpoint of an older version than the
    // one counted (captured out of order) changes nothing. Growth is added first and taken back when it passes
    // the budget, so concurrent sessions never pass it together; a new session may take the budget only to
    // its last tenth, which stays for the growth of sessions already kept; an entry that has gone takes no more.
    private KeepOutcome ResizeState(Entry entry, int bytes, long version, bool mayGrow)
    {
        lock (entry)
        {
            if (entry.IsGone)
            {
                return KeepOutcome.Gone;
            }

            if (version < entry.StateVersion)
            {
                return KeepOutcome.Kept;
            }

            var growth = bytes - entry.StateBytes;
            if (growth > 0 && !mayGrow)
            {
                return KeepOutcome.StateBudget;
            }

            var budget = entry.IsKept ? _maxStateBytes : _maxStateBytes - (_maxStateBytes / 10);
            if (growth > 0 && Interlocked.Add(ref _stateBytes, growth) > budget)
            {
                Interlocked.Add(ref _stateBytes, -growth);
                return KeepOutcome.StateBudget;
            }

            if (growth <= 0)
            {
                Interlocked.Add(ref _stateBytes, growth);
            }

            entry.StateBytes = bytes;
            entry.StateVersion = version;
            return KeepOutcome.Kept;
        }
    }

    // A gone entry's state no longer counts.
    private void ReleaseState(Entry entry)
    {
        lock (entry)
        {
            Interlocked.Add(ref _stateBytes, -entry.StateBytes);
            entry.StateBytes = 0;
        }
    }

    public ValueTask<SessionPin?> FindAsync(SessionId id, CancellationToken cancellationToken) => ValueTask.FromResult(Find(id));

    private SessionPin? Find(SessionId id) => Find(id, out _);

    private SessionPin? Find(SessionId id, out Entry? entry)
    {
        if (!_entries.TryGetValue(id, out entry) || entry.IsGone)
        {
            return null;
        }

        var now = Now();
        if (entry.IsExpired(now, _idleTimeout))
        {
            Expire(id, entry, ended: false);
            return null;
        }

        if (entry.Touch(now, TouchInterval) && entry.IsKept)
        {
            persistence.Touch(id.Value, now);
        }

        return new SessionPin(id, entry.DestinationId, entry.Version, entry.Epoch);
    }

    public void Dispose() => _lookupSlots.Dispose();

    public ValueTask<SessionPin?> FindOrLoadAsync(SessionId id, CancellationToken cancellationToken)
    {
        var found = Find(id, out var entry);
        if (found is not null && persistence.IsShared && !Trusted(entry!, Now()))
        {
            return RevalidateAsync(id, found, cancellationToken);
        }

        return found is not null || !persistence.MayHoldUnknown || _entries.ContainsKey(id) || _renamed.ContainsKey(id) || _ended.ContainsKey(id)
            || (_notFound.TryGetValue(id, out var missed) && Now() - missed < NotFoundMemory)
            ? ValueTask.FromResult(found)
            : LoadUnknownAsync(id, cancellationToken);
    }

    // Concurrent requests of one session share one lookup, which no single request's cancellation ends. Past
    // MaxPendingLookups waiting at once (a flood of replayed cookies, a store that hangs) a request is refused with
    // StoreUnavailableException — retry shortly — rather than queued or answered with a fresh session.
    private async ValueTask<SessionPin?> LoadUnknownAsync(SessionId id, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _pendingLookups) >= MaxPendingLookups && !_lookups.ContainsKey(id))
        {
            throw new StoreUnavailableException("Too many sessions are being looked up at once.");
        }

        var found = await SharedLookupAsync(id, cancellationToken);
        var now = Now();
        if (found?.Owner is null || now - found.LastAccess >= _idleTimeout + TouchInterval)
        {
            if (_notFound.Count >= MaxNotFound)
            {
                _notFound.Clear();
            }

            _notFound[id] = now;
            return null;
        }

        // Ended or renewed here while the lookup ran: never brought back.
        if (_ended.ContainsKey(id) || _renamed.ContainsKey(id))
        {
            return null;
        }

        Add(id, found, now);
        return Find(id);
    }

    // The one lookup of the id under way, or a new one.
    private Task<SessionSummary?> SharedLookupAsync(SessionId id, CancellationToken cancellationToken)
        => _lookups.GetOrAdd(id, key => new Lazy<Task<SessionSummary?>>(() => LookUpAsync(key))).Value.WaitAsync(cancellationToken);

    // A lookup waits for a slot at most the journal's timeout: a flood of lookups (cookies replayed by a client, a
    // store that hangs) is refused with 503 for as long as it lasts and no longer, never queued without end.
    private async Task<SessionSummary?> LookUpAsync(SessionId id)
    {
        Interlocked.Increment(ref _pendingLookups);
        try
        {
            if (!await _lookupSlots.WaitAsync(_lookupWait))
            {
                throw new StoreUnavailableException("No lookup slot came free within Baton:Journal:CommandTimeout.");
            }

            try
            {
                return await persistence.FindAsync(id.Value, CancellationToken.None);
            }
            finally
            {
                _lookupSlots.Release();
            }
        }
        finally
        {
            _lookups.TryRemove(id, out _);
            Interlocked.Decrement(ref _pendingLookups);
        }
    }

    /// <summary>How long an id the tiers did not hold is not looked up again (ms), and how many such ids are remembered.</summary>
    private const long NotFoundMemory = 5_000;

    private const int MaxNotFound = 100_000;

    /// <summary>Most distinct sessions being looked up (running or waiting for a slot) at once.</summary>
    private const int MaxPendingLookups = 1_000;

    public async ValueTask<SessionPin> PinAsync(SessionId id, string destinationId, CancellationToken cancellationToken)
    {
        if (IsRetired(id))
        {
            // A request of a renewed or ended session answered after the session died: it is not brought back.
            throw new StoreUnavailableException("The session was renewed or ended while it was being pinned.");
        }

        if (_entries.TryGetValue(id, out var existing) && !existing.IsGone && existing.IsKept
            && !string.Equals(existing.DestinationId, destinationId, StringComparison.OrdinalIgnoreCase))
        {
            // A stored session changes owner only through a claim, which one gateway wins.
            var claim = await ClaimAsync(id, destinationId, TimeSpan.Zero, cancellationToken);
            return claim.Outcome switch
            {
                ClaimOutcome.Won => Repin(id, destinationId, claim.Epoch),
                ClaimOutcome.Lost => await SettleBoundedAsync(id, cancellationToken) ?? throw new StoreUnavailableException("The session ended while it was being pinned."),
                _ => throw new StoreUnavailableException("The journal could not take the session's new pin."),
            };
        }

        var epoch = existing is null || existing.IsGone ? 0 : existing.Epoch + (string.Equals(existing.DestinationId, destinationId, StringComparison.OrdinalIgnoreCase) ? 0 : 1);
        return Repin(id, destinationId, epoch);
    }

    public async ValueTask<MoveClaim> ClaimAsync(SessionId id, string destinationId, TimeSpan lease, CancellationToken cancellationToken)
    {
        if (!_entries.TryGetValue(id, out var entry) || entry.IsGone)
        {
            return new MoveClaim(ClaimOutcome.Lost, 0);
        }

        var from = entry.Epoch;
        if (!entry.IsKept)
        {
            // Never stored: no other gateway knows the session, and this one's moves of it take turns.
            return new MoveClaim(ClaimOutcome.Won, from + 1);
        }

        var outcome = await persistence.ClaimAsync(id.Value, destinationId, from, Now(), lease);
        if (outcome == ClaimOutcome.Won && (IsRetired(id) || !_entries.TryGetValue(id, out var current) || !ReferenceEquals(current, entry)))
        {
            // Renewed or ended while the claim ran (the entry may be the new id's by now): no move of the old id, and
            // the row the claim may have made for it goes again.
            persistence.End(id.Value);
            return new MoveClaim(ClaimOutcome.Lost, from + 1);
        }

        if (outcome == ClaimOutcome.Won)
        {
            // The old owner's copy is fenced from now on; requests follow the new destination once it is placed.
            entry.RaiseEpoch(from + 1);
            entry.Checked(Now(), Volatile.Read(ref _coherence));
        }

        return new MoveClaim(outcome, from + 1);
    }

    public async ValueTask<SessionPin?> PlacedAsync(SessionId id, string destinationId, long epoch, CancellationToken cancellationToken)
    {
        if (_ended.ContainsKey(id) || _renamed.ContainsKey(id) || (_entries.TryGetValue(id, out var current) && current.Epoch > epoch))
        {
            // The session ended or got a new id while it was restored, or another gateway took the move over (its lease
            // ran out): this restore is not the session's pin.
            await persistence.ReleaseAsync(id.Value, null, epoch);
            return null;
        }

        var pin = Repin(id, destinationId, epoch);
        if (_entries.TryGetValue(id, out var entry) && entry.IsKept)
        {
            await persistence.ReleaseAsync(id.Value, destinationId, epoch);
        }

        return pin;
    }

    public async ValueTask AbandonAsync(SessionId id, long epoch)
    {
        if (_entries.TryGetValue(id, out var entry))
        {
            entry.RaiseEpoch(epoch);
            if (entry.IsKept)
            {
                await persistence.ReleaseAsync(id.Value, null, epoch);
            }
        }
    }

    public async ValueTask<SessionPin?> SettleAsync(SessionId id, CancellationToken cancellationToken)
    {
        if (!persistence.IsShared)
        {
            return Find(id);
        }

        while (true)
        {
            // Read before the lookup: a notice missed while it ran makes the pin checked again.
            var generation = Volatile.Read(ref _coherence);
            SessionSummary? stored;
            try
            {
                // Every request of the session waiting here shares one read, within the lookup slots: a move under way
                // costs the journal one read per poll, however many requests wait for it.
                stored = await SharedLookupAsync(id, cancellationToken);
            }
            catch (StoreUnavailableException)
            {
                // The tiers cannot say now: look again until the caller's deadline.
                await Task.Delay(SettlePoll, timeProvider, cancellationToken);
                continue;
            }

            if (stored?.Owner is null)
            {
                ForgetEndedElsewhere(id);
                return null;
            }

            if (stored.MovingUntil <= Now())
            {
                return Follow(id, stored, generation);
            }

            // Another gateway's restore is under way: its release (or the lease's end) tells when to go on.
            await Task.Delay(SettlePoll, timeProvider, cancellationToken);
        }
    }

    /// <summary>How often a gateway waiting for another's move looks at the shared truth again.</summary>
    private static readonly TimeSpan SettlePoll = TimeSpan.FromMilliseconds(25);

    // The pin in memory, made or moved; a gone entry is replaced by a new anonymous one.
    private SessionPin Repin(SessionId id, string destinationId, long epoch)
    {
        var now = Now();
        var added = false;
        var entry = _entries.AddOrUpdate(
            id,
            (_, state) =>
            {
                added = true;
                return new Entry(state.DestinationId, version: 0, state.Epoch, state.Now, kept: false);
            },
            (_, current, state) =>
            {
                if (current.IsGone)
                {
                    added = true;
                    return new Entry(state.DestinationId, version: 0, state.Epoch, state.Now, kept: false);
                }

                current.Repin(state.DestinationId, state.Epoch, state.Now);
                return current;
            },
            (DestinationId: destinationId, Epoch: epoch, Now: now));
        entry.Checked(now, Volatile.Read(ref _coherence));
        if (added)
        {
            AddAnonymous(id, entry);
        }

        return new SessionPin(id, entry.DestinationId, entry.Version, entry.Epoch);
    }

    // The shared truth's pin, taken over the one in memory unless that is of a later epoch (a claim of this gateway's).
    private SessionPin? Follow(SessionId id, SessionSummary stored, long generation)
    {
        var now = Now();
        if (!_entries.TryGetValue(id, out var entry) || entry.IsGone)
        {
            if (_ended.ContainsKey(id) || _renamed.ContainsKey(id))
            {
                return null;
            }

            Add(id, stored, now);
            return Find(id);
        }

        entry.Follow(stored.Owner!, stored.Epoch);
        entry.AdvanceVersion(stored.Version);
        entry.Checked(now, generation);
        return Find(id);
    }

    // Another gateway ended the session (logout, a new id): it goes from this table without a write, and is never
    // looked up again while a tier may still hold a copy.
    private void ForgetEndedElsewhere(SessionId id)
    {
        if (_ended.Count < _maxSessions)
        {
            _ended[id] = Now();
        }

        // Not an end here: with shared tiers, an expiry writes nothing.
        if (_entries.TryGetValue(id, out var entry))
        {
            Expire(id, entry, ended: false);
        }
    }

    // A notice from a gateway sharing the tiers (this one's own too: those change nothing).
    private void Heard(PinNotice notice)
    {
        if (!SessionId.TryParse(notice.SessionId, out var id) || !_entries.TryGetValue(id, out var entry) || entry.IsGone)
        {
            return;
        }

        if (notice.Owner is null)
        {
            ForgetEndedElsewhere(id);
            return;
        }

        entry.Follow(notice.Owner, notice.Epoch);
        entry.Checked(Now(), Volatile.Read(ref _coherence));
    }

    // The channel was down: every pin checked before now may have missed a notice, and is checked again on its next use.
    private void Unheard() => Interlocked.Increment(ref _coherence);

    // A stored session's pin is trusted while every notice since it was last checked was heard, or for PinStaleness
    // after that check: the bound on how stale a pin may be when no channel is heard (no Redis, or Redis down).
    private bool Trusted(Entry entry, long now)
        => !entry.IsKept
           || now - entry.CheckedAt < PinStaleness
           || (now - entry.CheckedAt < HeardPinStaleness && persistence.IsListening && entry.CheckedGeneration == Volatile.Read(ref _coherence));

    /// <summary>How long a pin is trusted without a check when no gateway's notices are heard (ms).</summary>
    public const long PinStaleness = 1_000;

    /// <summary>How long a pin is trusted without a check while notices are heard (ms): the bound when one is lost all the same (its sender's Redis link was down).</summary>
    public const long HeardPinStaleness = 10_000;

    // A pin that may be stale is checked against the shared truth; when the tiers cannot say, the pin in memory serves
    // (its checkpoints are fenced if it is stale).
    private async ValueTask<SessionPin?> RevalidateAsync(SessionId id, SessionPin cached, CancellationToken cancellationToken)
    {
        var generation = Volatile.Read(ref _coherence);
        SessionSummary? stored;
        try
        {
            stored = await SharedLookupAsync(id, cancellationToken);
        }
        catch (StoreUnavailableException)
        {
            // Not asked again before the staleness bound: a journal that hangs costs each session one wait per bound.
            if (_entries.TryGetValue(id, out var entry))
            {
                entry.Checked(Now(), generation);
            }

            return cached;
        }

        if (stored?.Owner is null)
        {
            ForgetEndedElsewhere(id);
            return null;
        }

        return Follow(id, stored, generation);
    }

    public void RecordChain(SessionId id, int? deltaBytes, (int Links, long Bytes) reported = default)
    {
        if (_entries.TryGetValue(id, out var entry))
        {
            entry.RecordChain(deltaBytes, reported);
        }
    }

    public void RequireWhole(SessionId id)
    {
        if (_entries.TryGetValue(id, out var entry))
        {
            entry.RequireWhole();
        }
    }

    public bool TakesDelta(SessionId id)
        => _maxDeltaChain > 0 && _entries.TryGetValue(id, out var entry) && entry.TakesDelta(_maxDeltaChain);

    public void RecordVersion(SessionId id, long version)
    {
        if (_entries.TryGetValue(id, out var entry))
        {
            entry.AdvanceVersion(version);
        }
    }

    public void AdvanceEpoch(SessionId id)
    {
        if (!_entries.TryGetValue(id, out var entry))
        {
            return;
        }

        var destination = entry.DestinationId;
        var epoch = entry.AdvanceEpoch();
        if (!entry.IsKept)
        {
            return;
        }

        // Best effort: with the store down the new epoch lives in memory, which is what the next request reads. A claim
        // another gateway won first leaves the session in that gateway's epoch, which this table then follows.
        _ = AdvanceStoredEpochAsync(id, destination, epoch - 1)
            .ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task AdvanceStoredEpochAsync(SessionId id, string destination, long from)
    {
        if (await persistence.ClaimAsync(id.Value, destination, from, Now(), TimeSpan.Zero) == ClaimOutcome.Lost && persistence.IsShared)
        {
            await SettleBoundedAsync(id, CancellationToken.None);
        }
    }

    // A settle outside a failover's deadline: at most four journal timeouts, then the store cannot say.
    private async Task<SessionPin?> SettleBoundedAsync(SessionId id, CancellationToken cancellationToken)
    {
        using var expiry = new CancellationTokenSource(_lookupWait * 4, timeProvider);
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, expiry.Token);
        try
        {
            return await SettleAsync(id, bounded.Token);
        }
        catch (OperationCanceledException) when (expiry.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new StoreUnavailableException("The session's pin could not be settled within four journal timeouts.");
        }
    }

    public void Rekey(SessionId id, SessionId renewed)
    {
        // Remembered before the entry moves, so the old id is known dead from the moment it leaves the table: never more
        // than MaxSessions of them, so logins in a loop cannot grow the gateway's memory. One not remembered is still gone
        // from the table, and a late change of it is answered "renewed or ended", never lost silently.
        if (_renamed.Count < _maxSessions)
        {
            _renamed[id] = new Renaming(renewed, Now());
        }

        if (_entries.TryRemove(id, out var entry) && !entry.IsGone && _entries.TryAdd(renewed, entry) && !entry.IsKept)
        {
            _anonymousOrder.Enqueue((renewed, entry));
        }
    }

    public void RekeyDone(SessionId id)
    {
        if (_renamed.TryGetValue(id, out var renaming))
        {
            renaming.Done.TrySetResult();
        }
    }

    /// <summary>Rotations remembered (see <see cref="Rekey"/>).</summary>
    internal int RenamedCount => _renamed.Count;

    public async Task<SessionId?> RenamedToAsync(SessionId id, CancellationToken cancellationToken)
    {
        if (!_renamed.TryGetValue(id, out var renaming))
        {
            return null;
        }

        await renaming.Done.Task.WaitAsync(cancellationToken);
        return renaming.Renewed;
    }

    public bool IsRetired(SessionId id) => _renamed.ContainsKey(id) || _ended.ContainsKey(id);

    public void ForgetRetired(SessionId id) => ForgetEndedElsewhere(id);

    public void Forget(SessionId id)
    {
        if (_entries.TryGetValue(id, out var entry))
        {
            Expire(id, entry, ended: true);
        }
    }

    public ValueTask<int> PurgeExpiredAsync(CancellationToken cancellationToken)
    {
        var now = Now();
        foreach (var (id, renaming) in _renamed)
        {
            if (renaming.At <= now - _idleTimeout && _renamed.TryRemove(new KeyValuePair<SessionId, Renaming>(id, renaming)))
            {
                renaming.Done.TrySetResult();
            }
        }

        Forget(_notFound, at => at, now - NotFoundMemory);
        Forget(_ended, at => at, now - _idleTimeout);

        var purged = 0;
        foreach (var (id, entry) in _entries)
        {
            if (entry.IsExpired(now, _idleTimeout) && Expire(id, entry, ended: false))
            {
                purged++;
            }
        }

        // Drop from the eviction order the sessions that were kept or have gone since.
        for (var i = _anonymousOrder.Count; i > 0 && _anonymousOrder.TryDequeue(out var queued); i--)
        {
            if (!queued.Entry.IsKept && _entries.TryGetValue(queued.Id, out var current) && ReferenceEquals(current, queued.Entry))
            {
                _anonymousOrder.Enqueue(queued);
            }
        }

        return ValueTask.FromResult(purged);
    }

    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        if (persistence.IsShared)
        {
            persistence.Listen(Heard, Unheard);
        }

        var now = Now();
        foreach (var pin in await persistence.LoadLiveAsync(now - _idleTimeout - TouchInterval, cancellationToken))
        {
            if (pin.Owner is null || !SessionId.TryParse(pin.SessionId, out var id))
            {
                continue;
            }

            Add(id, pin, now);
        }
    }

    // A kept session the tiers hold, unless the table has it already. The stored time may lag the real last use by up
    // to TouchInterval: the later is assumed.
    private void Add(SessionId id, SessionSummary stored, long now)
    {
        var lastAccess = Math.Min(now, stored.LastAccess + TouchInterval);
        var entry = new Entry(stored.Owner!, stored.Version, stored.Epoch, lastAccess, kept: true) { StateBytes = stored.StateBytes, StateVersion = stored.Version };
        entry.Checked(now, Volatile.Read(ref _coherence));
        if (_entries.TryAdd(id, entry))
        {
            Interlocked.Increment(ref _count);
            Interlocked.Add(ref _stateBytes, stored.StateBytes);
        }
    }

    // What the table remembers of ids it no longer holds, kept until the cutoff (Unix ms).
    private static void Forget<T>(ConcurrentDictionary<SessionId, T> remembered, Func<T, long> at, long cutoff)
    {
        foreach (var (id, value) in remembered)
        {
            if (at(value) <= cutoff)
            {
                remembered.TryRemove(id, out _);
            }
        }
    }

    // The entry's own state decides, once, whether it goes and which count it leaves: a session kept at the
    // moment it expires or is evicted is counted out exactly once, and never both kept and gone.
    // A session that ended (logout, a renewed id) is deleted from the tiers and never looked up again here. One that
    // merely went idle here is deleted from them only where this gateway is their one user: where the tiers may hold
    // sessions other gateways serve, it may be live on another, and the tiers' own expiry (its last use anywhere
    // plus the retention) drops it.
    private bool Expire(SessionId id, Entry entry, bool ended)
    {
        if (!entry.TryRetire(out var wasKept))
        {
            // Gone already (counted out then): only make sure it does not linger.
            _entries.TryRemove(new KeyValuePair<SessionId, Entry>(id, entry));
            return false;
        }

        _entries.TryRemove(new KeyValuePair<SessionId, Entry>(id, entry));
        ReleaseState(entry);
        if (ended && _ended.Count < _maxSessions)
        {
            _ended[id] = Now();
        }

        if (wasKept)
        {
            Interlocked.Decrement(ref _count);
            if (ended || !persistence.IsShared)
            {
                persistence.End(id.Value);
            }
        }
        else
        {
            Interlocked.Decrement(ref _anonymous);
        }

        return true;
    }

    // Past the anonymous budget the oldest anonymous sessions go first; a kept session is never evicted.
    private void AddAnonymous(SessionId id, Entry entry)
    {
        Interlocked.Increment(ref _anonymous);
        _anonymousOrder.Enqueue((id, entry));
        while (AnonymousCount > _maxAnonymous && _anonymousOrder.TryDequeue(out var oldest))
        {
            if (oldest.Entry.TryRetireAnonymous())
            {
                _entries.TryRemove(new KeyValuePair<SessionId, Entry>(oldest.Id, oldest.Entry));
                ReleaseState(oldest.Entry);
                Interlocked.Decrement(ref _anonymous);
            }
        }
    }

    public IReadOnlyDictionary<string, int> CountByDestination()
    {
        var now = Now();
        var counts = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in _entries.Values)
        {
            if (!entry.IsExpired(now, _idleTimeout) && !entry.IsGone)
            {
                counts[entry.DestinationId] = counts.GetValueOrDefault(entry.DestinationId) + 1;
            }
        }

        return counts;
    }

    private long Now() => timeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>A rotation: the new id, when it began (Unix ms), and whether it is over.</summary>
    private sealed class Renaming(SessionId renewed, long at)
    {
        public SessionId Renewed { get; } = renewed;

        public long At { get; } = at;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Entry(string destinationId, long version, long epoch, long lastAccess, bool kept)
    {
        private const int Anonymous = 0;
        private const int Kept = 1;
        private const int Gone = 2;
        private int _state = kept ? Kept : Anonymous;
        private string _destinationId = destinationId;
        private long _version = version;
        private long _epoch = epoch;
        private long _lastAccess = lastAccess;
        private long _lastStoredAccess = lastAccess;
        private long _checkedAt = lastAccess;
        private long _checkedGeneration;

        public string DestinationId => Volatile.Read(ref _destinationId);

        public long Version => Volatile.Read(ref _version);

        public long Epoch => Volatile.Read(ref _epoch);

        /// <summary>Bytes of its newest checkpoint, as counted in the table's total (changed under the entry's lock).</summary>
        public int StateBytes { get; set; }

        /// <summary>The version <see cref="StateBytes"/> was counted for.</summary>
        public long StateVersion { get; set; }

        // Deltas stored since the session's last whole state, and their bytes: those this gateway stored, or as many as a
        // tier said it holds when that is more (another gateway's, or this one's before a restart); whether a tier
        // refused one since (under the entry's lock).
        private int _links;
        private long _linkBytes;
        private bool _wholeRequired;

        public void RecordChain(int? deltaBytes, (int Links, long Bytes) reported)
        {
            lock (this)
            {
                (_links, _linkBytes) = deltaBytes is { } bytes
                    ? (Math.Max(_links + 1, reported.Links), Math.Max(_linkBytes + bytes, reported.Bytes))
                    : (0, 0);
                _wholeRequired &= deltaBytes is not null;
            }
        }

        public void RequireWhole()
        {
            lock (this)
            {
                _wholeRequired = true;
            }
        }

        public bool TakesDelta(int maxChain)
        {
            lock (this)
            {
                return !_wholeRequired && _links < maxChain && _linkBytes <= StateBytes;
            }
        }

        /// <summary>True once a backend wrote state for the session: it holds a slot and is stored.</summary>
        public bool IsKept => Volatile.Read(ref _state) == Kept;

        /// <summary>True once the session was evicted, expired or ended (it may linger in the table an instant).</summary>
        public bool IsGone => Volatile.Read(ref _state) == Gone;

        /// <summary>Anonymous to kept; true for the one call that changed it.</summary>
        public bool TryKeep() => Interlocked.CompareExchange(ref _state, Kept, Anonymous) == Anonymous;

        /// <summary>Anonymous to gone (eviction); false when it was kept or gone already.</summary>
        public bool TryRetireAnonymous() => Interlocked.CompareExchange(ref _state, Gone, Anonymous) == Anonymous;

        /// <summary>Either to gone; says which it was. False when it was gone already.</summary>
        public bool TryRetire(out bool wasKept)
        {
            while (true)
            {
                var state = Volatile.Read(ref _state);
                if (state == Gone)
                {
                    wasKept = false;
                    return false;
                }

                if (Interlocked.CompareExchange(ref _state, Gone, state) == state)
                {
                    wasKept = state == Kept;
                    return true;
                }
            }
        }

        public bool IsExpired(long now, long idleTimeout) => now - Volatile.Read(ref _lastAccess) >= idleTimeout;

        /// <summary>Refreshes the idle timer; true when the stored time should be refreshed too.</summary>
        public bool Touch(long now, long touchInterval)
        {
            Volatile.Write(ref _lastAccess, now);
            var stored = Volatile.Read(ref _lastStoredAccess);
            return now - stored >= touchInterval && Interlocked.CompareExchange(ref _lastStoredAccess, now, stored) == stored;
        }

        public void Repin(string destinationId, long epoch, long now)
        {
            ForgetCountedVersion();
            Volatile.Write(ref _destinationId, destinationId);
            Volatile.Write(ref _epoch, Math.Max(epoch, Volatile.Read(ref _epoch)));
            Volatile.Write(ref _lastAccess, now);
            Volatile.Write(ref _lastStoredAccess, now);
        }

        public long AdvanceEpoch()
        {
            ForgetCountedVersion();
            return Interlocked.Increment(ref _epoch);
        }

        public void RaiseEpoch(long epoch)
        {
            ForgetCountedVersion();
            RaiseTo(ref _epoch, epoch);
        }

        // A new epoch continues from the stored version, which may be below one counted but never stored (a
        // checkpoint refused or fenced): count the next checkpoint whatever its version.
        private void ForgetCountedVersion()
        {
            lock (this)
            {
                StateVersion = 0;
            }
        }

        public void AdvanceVersion(long version) => RaiseTo(ref _version, version);

        /// <summary>When the pin was last known to match the shared truth (Unix ms), and in which generation of the notice channel.</summary>
        public long CheckedAt => Volatile.Read(ref _checkedAt);

        public long CheckedGeneration => Volatile.Read(ref _checkedGeneration);

        public void Checked(long now, long generation)
        {
            Volatile.Write(ref _checkedAt, now);
            Volatile.Write(ref _checkedGeneration, generation);
        }

        /// <summary>Takes the owner and epoch another gateway set, unless this pin is of a later epoch.</summary>
        public void Follow(string owner, long epoch)
        {
            lock (this)
            {
                var current = Volatile.Read(ref _epoch);
                if (epoch < current || (epoch == current && string.Equals(owner, Volatile.Read(ref _destinationId), StringComparison.Ordinal)))
                {
                    return;
                }

                if (epoch > current)
                {
                    StateVersion = 0;
                }

                Volatile.Write(ref _destinationId, owner);
                Volatile.Write(ref _epoch, epoch);
            }
        }

        // Moves a field forward to the value, never back, against concurrent writers.
        private static void RaiseTo(ref long field, long value)
        {
            var current = Volatile.Read(ref field);
            while (value > current)
            {
                var seen = Interlocked.CompareExchange(ref field, value, current);
                if (seen == current)
                {
                    return;
                }

                current = seen;
            }
        }
    }
}
