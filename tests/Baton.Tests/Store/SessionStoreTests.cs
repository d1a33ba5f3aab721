using System.Diagnostics.Metrics;
using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Store;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Baton.Tests.Store;

/// <summary>The store's rules over two in-memory tiers: what it acknowledges, what it remembers, what it reads.</summary>
[Trait("Category", "Unit")]
public sealed class SessionStoreTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly MemoryTier _redis = new("redis");
    private readonly MemoryTier _journal = new("journal");
    private readonly SessionStore _store;

    public SessionStoreTests() => _store = NewStore(_redis, _journal);

    public void Dispose() => _services.Dispose();

    [Fact]
    public async Task ACheckpoint_IsInBothTiers_AndTheJournalsVerdictIsTheAnswer()
    {
        var id = Baton.Protocol.Ids.New();
        _journal.Put(TestRecords.Checkpoint(id, 5, [5], "b1", 1, epoch: 2));

        Assert.Equal(SaveOutcome.Fenced, await _store.SaveCheckpointAsync(TestRecords.Checkpoint(id, 6, [6], "b1", 2, epoch: 1)));
        Assert.Equal(SaveOutcome.Stored, await _store.SaveCheckpointAsync(TestRecords.Checkpoint(id, 6, [6], "b1", 2, epoch: 2)));
        Assert.Equal(6, _journal[id]!.Version);
        Assert.Equal(6, _redis[id]!.Version);
        Assert.False(_store.HasMissedWrites);
    }

    [Fact]
    public async Task WithTheJournalDown_RedisAloneAcknowledges_AndTheCatchUpWritesItIntoTheJournalOnceItIsBack()
    {
        var id = Baton.Protocol.Ids.New();
        Assert.Equal(ClaimOutcome.Won, await _store.ClaimAsync(id, "b1", 0, 10, TimeSpan.Zero));
        _journal.Down = true;

        Assert.Equal(SaveOutcome.Stored, await _store.SaveCheckpointAsync(TestRecords.Checkpoint(id, 1, [1], "b1", 11, epoch: 1)));
        Assert.Equal(1, _store.JournalBehind);
        Assert.Equal(0, await _store.CatchUpAsync(CancellationToken.None));

        _journal.Down = false;
        Assert.Equal(1, await _store.CatchUpAsync(CancellationToken.None));
        Assert.Equal((1L, 1L, "b1"), (_journal[id]!.Version, _journal[id]!.Epoch, _journal[id]!.Owner));
        Assert.Equal(new byte[] { 1 }, _journal[id]!.State);
        Assert.False(_store.HasMissedWrites);
    }

    [Fact]
    public async Task AMovesRestoreWithASharedJournal_TakesTheNewerOfBothTiers_ButNeverAJournalCopyBelowTheVersionKnownStored()
    {
        var redis = new MemoryTier("redis");
        var journal = new MemoryTier("journal", isShared: true);
        var store = NewStore(redis, journal);
        var id = Baton.Protocol.Ids.New();

        // Another gateway's change (version 4) is in the journal; this gateway's Redis copy missed it (a failover): a
        // move's restore reads both tiers.
        journal.Put(TestRecords.Checkpoint(id, 4, [4], "b1", 10, epoch: 1));
        redis.Put(TestRecords.Checkpoint(id, 3, [3], "b1", 10, epoch: 1));
        Assert.Equal(4, (await store.GetAsync(id, 3, CancellationToken.None, 1, newestOfBoth: true))!.Version);

        // A change acknowledged on Redis alone (version 5), then a move's claim raised the journal's epoch over version 4.
        redis.Put(TestRecords.Checkpoint(id, 5, [5], "b1", 10, epoch: 1));
        Assert.Equal(ClaimOutcome.Won, await journal.ClaimAsync(id, "b2", 1, 20, 1000, 0));
        Assert.Equal(new byte[] { 5 }, (await store.GetAsync(id, 5, CancellationToken.None, 1, newestOfBoth: true))!.State);
    }

    [Fact]
    public async Task AMovesRestore_NeverTakesTheRedisCopyOfASessionTheSharedJournalMarksEnded()
    {
        var redis = new MemoryTier("redis");
        var journal = new MemoryTier("journal", isShared: true);
        var store = NewStore(redis, journal);
        var id = Baton.Protocol.Ids.New();
        journal.Put(TestRecords.Checkpoint(id, 3, [3], "b1", 10, epoch: 1));
        redis.Put(TestRecords.Checkpoint(id, 3, [3], "b1", 10, epoch: 1));

        // The session ended (a logout, a renewed id) while Redis could not take the delete: its copy stays there.
        redis.Down = true;
        await store.EndAsync(id);
        redis.Down = false;
        Assert.NotNull(redis[id]);

        await Assert.ThrowsAsync<SessionEndedException>(() => store.GetAsync(id, 3, CancellationToken.None, 1, newestOfBoth: true, refuseEnded: true));

        // A session only Redis holds because the journal missed its write (not an end) is still read from Redis.
        var behind = Baton.Protocol.Ids.New();
        redis.Put(TestRecords.Checkpoint(behind, 2, [2], "b1", 10, epoch: 0));
        Assert.Equal(2, (await store.GetAsync(behind, 2, CancellationToken.None, 0, newestOfBoth: true, refuseEnded: true))!.Version);
    }

    [Fact]
    public async Task WithBothTiersDown_NothingIsAcknowledged_AndNothingIsRemembered()
    {
        _journal.Down = true;
        _redis.Down = true;

        await Assert.ThrowsAsync<StoreUnavailableException>(() => _store.SaveCheckpointAsync(TestRecords.Checkpoint(Baton.Protocol.Ids.New(), 1, [1], "b1", 1)));
        Assert.Equal(ClaimOutcome.Unavailable, await _store.ClaimAsync(Baton.Protocol.Ids.New(), "b1", 0, 1, TimeSpan.Zero));
        Assert.False(_store.HasMissedWrites);
    }

    [Fact]
    public async Task AJournalThatHangs_IsWaitedForAtMostItsCommitWait_WhenRedisHoldsTheWrite_AndToItsEndWhenRedisDoesNot()
    {
        var id = Baton.Protocol.Ids.New();
        _journal.CommitWait = TimeSpan.FromMilliseconds(50);
        _journal.Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Redis took it: the hung journal is not waited for past its wait, and is caught up later.
        Assert.Equal(SaveOutcome.Stored, await _store.SaveCheckpointAsync(TestRecords.Checkpoint(id, 1, [1], "b1", 1)).WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(1, _store.JournalBehind);

        // Redis did not: the answer waits for the journal's own, never "not made" for a write it may still commit.
        _redis.Down = true;
        var waiting = _store.SaveCheckpointAsync(TestRecords.Checkpoint(id, 2, [2], "b1", 2));
        Assert.NotSame(waiting, await Task.WhenAny(waiting, Task.Delay(TimeSpan.FromMilliseconds(200))));
        _journal.Hold.SetResult();
        Assert.Equal(SaveOutcome.Stored, await waiting);
        Assert.Equal(2, _journal[id]!.Version);
    }

    [Fact]
    public async Task AnEndTheJournalMissed_IsMadeByTheCatchUp_BeforeAnyCopyFromRedis()
    {
        var id = Baton.Protocol.Ids.New();
        await _store.SaveCheckpointAsync(TestRecords.Checkpoint(id, 1, [1], "b1", 1));
        _journal.Down = true;
        _store.End(id);
        await Eventually.TrueAsync(() => _store.HasMissedWrites, TimeSpan.FromSeconds(5), "the missed end should be remembered");
        Assert.NotNull(_journal[id]);

        _journal.Down = false;
        Assert.Equal(1, await _store.CatchUpAsync(CancellationToken.None));
        Assert.Null(_journal[id]);
        Assert.Null(_redis[id]);
    }

    [Fact]
    public async Task AReadTakesRedisAtTheKnownVersion_TheNewerTierOtherwise_AndNeverADamagedRedisCopy()
    {
        var id = Baton.Protocol.Ids.New();
        _journal.Put(TestRecords.Checkpoint(id, 4, [4], "b1", 1, epoch: 1));
        _redis.Put(TestRecords.Checkpoint(id, 3, [3], "b1", 1, epoch: 1));
        Assert.Equal(3, (await _store.GetAsync(id, 3, CancellationToken.None))!.Version);
        Assert.Equal(4, (await _store.GetAsync(id, 4, CancellationToken.None))!.Version);

        // A Redis copy of an older epoch never wins, even at a higher version (a move Redis missed); a damaged one never.
        _journal.Put(TestRecords.Checkpoint(id, 5, [5], "b2", 2, epoch: 2));
        _redis.Put(TestRecords.Checkpoint(id, 6, [6], "b1", 2, epoch: 1));
        Assert.Equal((5L, 2L), Position(await _store.GetAsync(id, 1, CancellationToken.None, minimumEpoch: 2)));
        _redis.Put(TestRecords.Checkpoint(id, 6, [6], "b2", 2, epoch: 2) with { State = [9] });
        Assert.Equal((5L, 2L), Position(await _store.GetAsync(id, 1, CancellationToken.None)));
        _redis.Put(TestRecords.Checkpoint(id, 6, [6], "b2", 2, epoch: 2));
        Assert.Equal((6L, 2L), Position(await _store.GetAsync(id, 6, CancellationToken.None)));

        // The journal unreadable and Redis below the known version: an error, never an empty or older session.
        _journal.Down = true;
        await Assert.ThrowsAsync<StoreUnavailableException>(() => _store.GetAsync(id, 7, CancellationToken.None));
    }

    [Fact]
    public async Task ALookupOfAnUnknownSession_TrustsALocalJournalOnlyWhenItBeganEmpty_ASharedOneAlways()
    {
        var id = Baton.Protocol.Ids.New();
        _redis.Put(TestRecords.Checkpoint(id, 2, [2], "b2", 1, epoch: 1));

        // A local journal that holds everything it ever acknowledged: nothing to look up.
        Assert.False(_store.MayHoldUnknown);

        // One that began empty: Redis's copy is the session, until the journal is rebuilt from all Redis holds.
        var empty = NewStore(_redis, new MemoryTier("journal") { StartedEmpty = true });
        Assert.True(empty.MayHoldUnknown);
        Assert.Equal(("b2", 2L), ((await empty.FindAsync(id, CancellationToken.None))!.Owner, (await empty.FindAsync(id, CancellationToken.None))!.Version));
        await empty.LoadLiveAsync(0, CancellationToken.None);
        Assert.False(empty.MayHoldUnknown);

        // A shared journal: one it holds is taken at the newer of the two copies; one Redis alone holds lives unless
        // the journal marks it ended, and is then written into the journal by the catch-up; with the journal
        // unreadable, Redis's copy is taken.
        var shared = new MemoryTier("journal", isShared: true);
        var store = NewStore(_redis, shared);
        Assert.True(store.MayHoldUnknown);
        Assert.Equal(2, (await store.FindAsync(id, CancellationToken.None))!.Version);
        Assert.Equal(1, await store.CatchUpAsync(CancellationToken.None));
        Assert.Equal(2, shared[id]!.Version);
        var ended = Baton.Protocol.Ids.New();
        _redis.Put(TestRecords.Checkpoint(ended, 2, [2], "b2", 1, epoch: 1));
        await shared.EndAsync(ended);
        Assert.Null(await store.FindAsync(ended, CancellationToken.None));
        shared.Put(TestRecords.Checkpoint(id, 1, [1], "b1", 1, epoch: 1));
        Assert.Equal(2, (await store.FindAsync(id, CancellationToken.None))!.Version);
        shared.Put(TestRecords.Checkpoint(id, 1, [1], "b3", 1, epoch: 3));
        Assert.Equal(("b3", 3L), ((await store.FindAsync(id, CancellationToken.None))!.Owner, (await store.FindAsync(id, CancellationToken.None))!.Epoch));
        shared.Down = true;
        Assert.Equal(("b2", 2L), ((await store.FindAsync(id, CancellationToken.None))!.Owner, (await store.FindAsync(id, CancellationToken.None))!.Version));

        // Neither tier answering: the store cannot say, and says so (the request is refused, never given a fresh session).
        _redis.Down = true;
        await Assert.ThrowsAsync<StoreUnavailableException>(() => store.FindAsync(id, CancellationToken.None));
    }

    [Fact]
    public async Task AStartingGateway_TakesFromRedisOnlyWhatIsNewerForSessionsTheJournalHolds_UnlessTheJournalBeganEmpty()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var held = Baton.Protocol.Ids.New();
        var redisOnly = Baton.Protocol.Ids.New();
        _journal.Put(TestRecords.Checkpoint(held, 1, [1], "b1", now, epoch: 1));
        _redis.Put(TestRecords.Checkpoint(held, 3, [3], "b1", now, epoch: 1));
        _redis.Put(TestRecords.Checkpoint(redisOnly, 1, [1], "b2", now, epoch: 1));

        var loaded = await _store.LoadLiveAsync(now - 1000, CancellationToken.None);
        Assert.Equal([(held, 3L)], loaded.Select(s => (s.SessionId, s.Version)));
        Assert.Equal(3, _journal[held]!.Version);
        Assert.Null(_journal[redisOnly]);

        _journal.StartedEmpty = true;
        loaded = await _store.LoadLiveAsync(now - 1000, CancellationToken.None);
        Assert.Equal(new[] { held, redisOnly }.Order(StringComparer.Ordinal), loaded.Select(s => s.SessionId).Order(StringComparer.Ordinal));
        Assert.Equal(1, _journal[redisOnly]!.Version);
    }

    private static (long Version, long Epoch) Position(SessionRecord? record) => (record!.Version, record.Epoch);

    [Fact]
    public async Task ADeltaTheJournalCannotApply_IsMadeGoodFromRedisWholeRecord_BeforeItIsAcknowledged()
    {
        // The journal missed version 3 (Redis alone took it): a delta from 3 does not apply there.
        var id = Baton.Protocol.Ids.New();
        var whole = Baton.Protocol.KeyedState.Encode(new Dictionary<string, byte[]> { ["big"] = new byte[4096], ["n"] = [1] });
        _redis.Put(TestRecords.Checkpoint(id, 3, whole, "b1", 1, epoch: 1));
        _journal.Put(TestRecords.Checkpoint(id, 1, [], "b1", 1, epoch: 1));

        var report = new CheckpointReport();
        Assert.Equal(SaveOutcome.Stored, await _store.SaveCheckpointAsync(Delta(id, 4, deltaBase: 3, epoch: 1, n: 4), report));

        // Acknowledged only once the journal holds it: Redis's whole record, the delta folded in, written there.
        Assert.Equal(4, _journal[id]!.Version);
        Assert.Equal(_redis[id]!.State, _journal[id]!.State);
        Assert.True(Baton.Protocol.KeyedState.TryDecode(_journal[id]!.State, out var values));
        Assert.Equal([4], values["n"]);
        Assert.False(_store.HasMissedWrites);
        Assert.True(report.TierBehind);
    }

    [Fact]
    public async Task ADeltaRedisCannotApply_DropsRedisCopy_SoReadsTakeTheJournals()
    {
        var id = Baton.Protocol.Ids.New();
        var whole = Baton.Protocol.KeyedState.Encode(new Dictionary<string, byte[]> { ["big"] = new byte[4096], ["n"] = [1] });
        _journal.Put(TestRecords.Checkpoint(id, 3, whole, "b1", 1, epoch: 1));
        _redis.Put(TestRecords.Checkpoint(id, 1, [], "b1", 1, epoch: 1));

        var report = new CheckpointReport();
        Assert.Equal(SaveOutcome.Stored, await _store.SaveCheckpointAsync(Delta(id, 4, deltaBase: 3, epoch: 1, n: 4), report));
        await Eventually.TrueAsync(() => Task.FromResult(_redis[id] is null), TimeSpan.FromSeconds(5), "Redis's older line should be dropped");
        Assert.True(report.TierBehind);
        var read = await _store.GetAsync(id, 4, CancellationToken.None);
        Assert.Equal(4, read!.Version);
        Assert.True(Baton.Protocol.KeyedState.TryDecode(read.State, out var values));
        Assert.Equal([4], values["n"]);
        Assert.Equal(4096, values["big"].Length);
    }

    [Fact]
    public async Task ADeltaNeitherTierCanApply_IsNotAcknowledged()
    {
        var id = Baton.Protocol.Ids.New();
        _journal.Put(TestRecords.Checkpoint(id, 1, [], "b1", 1, epoch: 1));
        _redis.Put(TestRecords.Checkpoint(id, 1, [], "b1", 1, epoch: 1));

        var report = new CheckpointReport();
        await Assert.ThrowsAsync<StoreUnavailableException>(() => _store.SaveCheckpointAsync(Delta(id, 4, deltaBase: 3, epoch: 1, n: 4), report));
        await Assert.ThrowsAsync<StoreUnavailableException>(() => _store.SaveCheckpointAsync(Delta(Baton.Protocol.Ids.New(), 4, deltaBase: 3, epoch: 1, n: 4)));
        Assert.Equal(1, _journal[id]!.Version);
        Assert.Equal(1, _redis[id]!.Version);
        Assert.False(_store.HasMissedWrites);
        Assert.True(report.TierBehind);
    }

    [Fact]
    public async Task TheCatchUp_NeverCopiesADamagedRedisRecordOverTheJournals()
    {
        var id = Baton.Protocol.Ids.New();
        Assert.Equal(ClaimOutcome.Won, await _store.ClaimAsync(id, "b1", 0, 10, TimeSpan.Zero));
        Assert.Equal(SaveOutcome.Stored, await _store.SaveCheckpointAsync(TestRecords.Checkpoint(id, 1, [1], "b1", 11, epoch: 1)));
        _journal.Down = true;
        Assert.Equal(SaveOutcome.Stored, await _store.SaveCheckpointAsync(TestRecords.Checkpoint(id, 2, [2], "b1", 12, epoch: 1)));
        _journal.Down = false;

        // Redis's copy no longer matches its digest (a chain that does not fold, a damaged value).
        _redis.Put(_redis[id]! with { State = [9] });
        Assert.Equal(0, await _store.CatchUpAsync(CancellationToken.None));

        Assert.Equal(1, _journal[id]!.Version);
        Assert.Equal([1], _journal[id]!.State);
        Assert.Equal(0, _store.JournalBehind);
    }

    private static SessionRecord Delta(string id, long version, long deltaBase, long epoch, byte n)
    {
        var delta = Baton.Protocol.KeyedState.EncodeDelta([new("n", [n])])!;
        return TestRecords.Checkpoint(id, version, delta, "b1", 2, epoch) with { DeltaBase = deltaBase };
    }

    private SessionStore NewStore(ISessionTier redis, IDurableTier journal)
        => new(redis, journal, Options.Create(new BatonOptions()), new BatonMetrics(_services.GetRequiredService<IMeterFactory>()), NullLogger<SessionStore>.Instance);
}
