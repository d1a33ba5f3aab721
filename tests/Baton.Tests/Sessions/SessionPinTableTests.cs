using Baton.Gateway.Configuration;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Baton.Tests.Sessions;

[Trait("Category", "Unit")]
public sealed class SessionPinTableTests
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(20);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    private readonly RecordingPersistence _store = new();

    private SessionPinTable NewTable(int maxSessions = 100, int maxAnonymous = 100, long maxStateBytes = 1L << 40)
        => new(Options.Create(new BatonOptions { Sessions = new BatonSessionOptions { IdleTimeout = IdleTimeout, MaxSessions = maxSessions, MaxAnonymousSessions = maxAnonymous, MaxTotalStateBytes = maxStateBytes } }), _time, _store);

    /// <summary>A session a backend has written state for: pinned and kept.</summary>
    private static async Task<SessionId> KeptAsync(SessionPinTable table, string destinationId)
    {
        var id = SessionId.New();
        await table.PinAsync(id, destinationId, default);
        Assert.Equal(KeepOutcome.Kept, table.TryKeep(id, 100, 1));
        return id;
    }

    [Fact]
    public async Task FindAsync_UnknownSession_IsNull()
    {
        var table = NewTable();

        Assert.Null(await table.FindAsync(SessionId.New(), default));
    }

    [Fact]
    public async Task PinAsync_ThenFindAsync_GivesThePin_AndRepinMovesIt()
    {
        var table = NewTable();
        var id = SessionId.New();

        await table.PinAsync(id, "b1", default);
        Assert.Equal(new SessionPin(id, "b1", 0, 0), await table.FindAsync(id, default));

        await table.PinAsync(id, "b3", default);
        Assert.Equal(new SessionPin(id, "b3", 0, 1), await table.FindAsync(id, default));
        Assert.Equal((0, 1), (table.Count, table.AnonymousCount));
    }

    [Fact]
    public async Task ClaimAsync_OfAStoredSession_IsMadeInTheStore_FencesTheOldCopyAtOnce_AndMovesThePinOnlyWhenPlaced()
    {
        var table = NewTable();
        var id = await KeptAsync(table, "b1");

        Assert.Equal(new MoveClaim(ClaimOutcome.Won, 1), await table.ClaimAsync(id, "b2", TimeSpan.FromSeconds(6), default));

        // The store holds the claim; requests still follow the old pin, in the new epoch (the old copy's changes are fenced).
        Assert.Contains(("claim", id.Value, "b2"), _store.Writes);
        Assert.Equal(new SessionPin(id, "b1", 0, 1), await table.FindAsync(id, default));

        Assert.Equal(new SessionPin(id, "b2", 0, 1), await table.PlacedAsync(id, "b2", 1, default));
        Assert.Equal(new SessionPin(id, "b2", 0, 1), await table.FindAsync(id, default));
        Assert.Contains(("release", id.Value, "b2"), _store.Writes);
    }

    [Fact]
    public async Task AbandonAsync_EndsTheLease_AndLeavesThePinWhereItIs_InTheClaimedEpoch()
    {
        var table = NewTable();
        var id = await KeptAsync(table, "b1");
        var claim = await table.ClaimAsync(id, "b2", TimeSpan.FromSeconds(6), default);

        await table.AbandonAsync(id, claim.Epoch);

        // The store holds epoch 1: memory must never be behind it, or the store would fence the session's own checkpoints.
        Assert.Contains(("release", id.Value, null), _store.Writes);
        Assert.Equal(new SessionPin(id, "b1", 0, 1), await table.FindAsync(id, default));
        Assert.Equal(new MoveClaim(ClaimOutcome.Won, 2), await table.ClaimAsync(id, "b3", TimeSpan.FromSeconds(6), default));
    }

    [Fact]
    public async Task ClaimAsync_OfASessionNeverStored_NeedsNoClaimInTheStore()
    {
        var table = NewTable();
        var id = SessionId.New();
        await table.PinAsync(id, "b1", default);

        Assert.Equal(new MoveClaim(ClaimOutcome.Won, 1), await table.ClaimAsync(id, "b2", TimeSpan.FromSeconds(6), default));
        Assert.DoesNotContain(_store.Writes, w => w.Kind == "claim");
    }

    [Fact]
    public async Task AClaimLostToAnotherGateway_WaitsForItsRestore_ThenFollowsIt()
    {
        _store.IsShared = true;
        _store.Claims = ClaimOutcome.Lost;
        var table = NewTable();
        var id = await KeptAsync(table, "b1");
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        _store.Stored.Add(new SessionSummary(id.Value, "b3", 1, 4, 100, now) { MovingUntil = now + 6_000 });

        Assert.Equal(ClaimOutcome.Lost, (await table.ClaimAsync(id, "b2", TimeSpan.FromSeconds(6), default)).Outcome);
        Assert.Equal(new SessionPin(id, "b1", 0, 0), await table.FindAsync(id, default));

        var settling = table.SettleAsync(id, default).AsTask();
        _time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.False(settling.IsCompleted);

        // The winner's restore is done: its lease is released.
        _store.Stored[0] = _store.Stored[0] with { MovingUntil = 0 };
        while (!settling.IsCompleted)
        {
            _time.Advance(TimeSpan.FromMilliseconds(25));
            await Task.Yield();
        }

        Assert.Equal(new SessionPin(id, "b3", 4, 1), await settling);
        Assert.Equal(new SessionPin(id, "b3", 4, 1), await table.FindAsync(id, default));
    }

    [Fact]
    public async Task ARestoreFinishedAfterAnotherGatewayTookTheMoveOver_IsNotThePin()
    {
        _store.IsShared = true;
        var table = NewTable();
        await table.LoadAsync(default);
        var id = await KeptAsync(table, "b1");
        var claim = await table.ClaimAsync(id, "b2", TimeSpan.FromSeconds(6), default);

        // This gateway's restore outlived its lease: another took the move over to b3 in the next epoch.
        _store.Heard!(new PinNotice(id.Value, "b3", claim.Epoch + 1));

        Assert.Null(await table.PlacedAsync(id, "b2", claim.Epoch, default));
        Assert.Equal(new SessionPin(id, "b3", 0, 2), await table.FindAsync(id, default));
        Assert.Contains(("release", id.Value, null), _store.Writes);
    }

    [Fact]
    public async Task RequestsWaitingForAnotherGatewaysMove_ShareOneReadOfTheTiers()
    {
        _store.IsShared = true;
        var table = NewTable();
        var id = await KeptAsync(table, "b1");
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        _store.Stored.Add(new SessionSummary(id.Value, "b3", 1, 0, 100, now) { MovingUntil = now + 6_000 });
        _store.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var waiting = Enumerable.Range(0, 50).Select(_ => table.SettleAsync(id, default).AsTask()).ToList();
        Assert.Equal(1, _store.Lookups);

        _store.Stored[0] = _store.Stored[0] with { MovingUntil = 0 };
        _store.Gate.SetResult();
        Assert.All(await Task.WhenAll(waiting), pin => Assert.Equal(new SessionPin(id, "b3", 0, 1), pin));
        Assert.Equal(1, _store.Lookups);
    }

    [Fact]
    public async Task AnotherGatewaysNotice_MovesThePinForward_NeverBack_AndItsEndForgetsTheSession()
    {
        _store.IsShared = true;
        _store.MayHoldUnknown = true;
        var table = NewTable();
        await table.LoadAsync(default);
        var id = await KeptAsync(table, "b1");

        _store.Heard!(new PinNotice(id.Value, "b2", 3));
        Assert.Equal(new SessionPin(id, "b2", 0, 3), await table.FindAsync(id, default));
        _store.Heard(new PinNotice(id.Value, "b1", 2));
        Assert.Equal(new SessionPin(id, "b2", 0, 3), await table.FindAsync(id, default));

        _store.Heard(new PinNotice(id.Value, null, 0));
        Assert.Null(await table.FindAsync(id, default));
        Assert.Null(await table.FindOrLoadAsync(id, default));
        Assert.Equal(0, _store.Lookups);
        Assert.DoesNotContain(("delete", id.Value, null), _store.Writes);
    }

    [Fact]
    public async Task WhileNoticesAreHeard_APinIsTrustedForTheLongerBound_AndOnceTheChannelWasLost_ItIsCheckedAgainstTheTiersOnItsNextUse()
    {
        _store.IsShared = true;
        _store.IsListening = true;
        var table = NewTable();
        await table.LoadAsync(default);
        var id = await KeptAsync(table, "b1");
        _store.Stored.Add(new SessionSummary(id.Value, "b2", 4, 7, 100, _time.GetUtcNow().ToUnixTimeMilliseconds()));

        _time.Advance(TimeSpan.FromMilliseconds(SessionPinTable.HeardPinStaleness - 1));
        Assert.Equal(new SessionPin(id, "b1", 0, 0), await table.FindOrLoadAsync(id, default));
        Assert.Equal(0, _store.Lookups);

        _store.Missed!();
        Assert.Equal(new SessionPin(id, "b2", 7, 4), await table.FindOrLoadAsync(id, default));
        Assert.Equal(new SessionPin(id, "b2", 7, 4), await table.FindOrLoadAsync(id, default));
        Assert.Equal(1, _store.Lookups);

        // Even with every notice heard, a pin is checked again past the longer bound (a notice its sender could not send).
        _store.Stored[0] = _store.Stored[0] with { Owner = "b3", Epoch = 5 };
        _time.Advance(TimeSpan.FromMilliseconds(SessionPinTable.HeardPinStaleness - 1));
        Assert.Equal(new SessionPin(id, "b2", 7, 4), await table.FindOrLoadAsync(id, default));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(new SessionPin(id, "b3", 7, 5), await table.FindOrLoadAsync(id, default));
        Assert.Equal(2, _store.Lookups);
    }

    [Fact]
    public async Task WithNoNoticesHeard_APinIsTrustedForThePinStaleness_ThenChecked()
    {
        _store.IsShared = true;
        var table = NewTable();
        var id = await KeptAsync(table, "b1");
        _store.Stored.Add(new SessionSummary(id.Value, "b2", 4, 7, 100, _time.GetUtcNow().ToUnixTimeMilliseconds()));

        _time.Advance(TimeSpan.FromMilliseconds(SessionPinTable.PinStaleness - 1));
        Assert.Equal(new SessionPin(id, "b1", 0, 0), await table.FindOrLoadAsync(id, default));
        Assert.Equal(0, _store.Lookups);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(new SessionPin(id, "b2", 7, 4), await table.FindOrLoadAsync(id, default));
        Assert.Equal(1, _store.Lookups);
    }

    [Fact]
    public async Task FindAsync_AfterTheIdleTimeout_IsNull_AndForgetsTheSession()
    {
        var table = NewTable();
        var id = SessionId.New();
        await table.PinAsync(id, "b1", default);

        _time.Advance(IdleTimeout);

        Assert.Null(await table.FindAsync(id, default));
        Assert.Equal(0, table.Count);
    }

    [Fact]
    public async Task FindAsync_RefreshesTheIdleTimer()
    {
        var table = NewTable();
        var id = SessionId.New();
        await table.PinAsync(id, "b1", default);

        for (var i = 0; i < 5; i++)
        {
            _time.Advance(IdleTimeout - TimeSpan.FromSeconds(1));
            Assert.NotNull(await table.FindAsync(id, default));
        }
    }

    [Fact]
    public async Task PurgeExpiredAsync_RemovesOnlyExpiredSessions()
    {
        var table = NewTable();
        var old = SessionId.New();
        await table.PinAsync(old, "b1", default);
        _time.Advance(IdleTimeout / 2);
        var recent = SessionId.New();
        await table.PinAsync(recent, "b2", default);
        _time.Advance(IdleTimeout / 2);

        Assert.Equal(1, await table.PurgeExpiredAsync(default));
        Assert.Equal(1, table.AnonymousCount);
        Assert.NotNull(await table.FindAsync(recent, default));
    }

    [Fact]
    public async Task TryKeep_RefusesPastMaxSessions_AndTakesAgainOnceAKeptSessionExpires()
    {
        var table = NewTable(maxSessions: 2);
        await KeptAsync(table, "b1");
        await KeptAsync(table, "b2");
        var third = SessionId.New();
        await table.PinAsync(third, "b1", default);

        Assert.Equal(KeepOutcome.SessionLimit, table.TryKeep(third, 100, 1));
        Assert.Equal(2, table.Count);

        _time.Advance(IdleTimeout);
        await table.PurgeExpiredAsync(default);
        var fourth = SessionId.New();
        await table.PinAsync(fourth, "b3", default);

        Assert.Equal(KeepOutcome.Kept, table.TryKeep(fourth, 100, 1));
        Assert.Equal(KeepOutcome.Kept, table.TryKeep(fourth, 100, 1));
        Assert.Equal(1, table.Count);
    }

    [Fact]
    public async Task TheStateBudget_RefusesGrowthPastIt_KeepsItsLastTenthForKeptSessions_NeverRefusesWhatDoesNotGrow_AndFreesWhatEnds()
    {
        var table = NewTable(maxStateBytes: 1000);
        var first = await KeptAsync(table, "b1");
        Assert.Equal(KeepOutcome.Kept, table.TryKeep(first, 600, 2));
        var second = SessionId.New();
        await table.PinAsync(second, "b2", default);

        // A new session may take the budget only to nine tenths: 600 + 400 is refused, and the refused
        // session holds no slot and no bytes; 600 + 300 is not.
        Assert.Equal(KeepOutcome.StateBudget, table.TryKeep(second, 400, 1));
        Assert.Equal((1, 1, 600L), (table.Count, table.AnonymousCount, table.StateBytes));
        Assert.Equal(KeepOutcome.Kept, table.TryKeep(second, 300, 1));
        Assert.Equal(900, table.StateBytes);

        // A kept session grows into the last tenth, not past it.
        Assert.Equal(KeepOutcome.Kept, table.TryKeep(first, 700, 3));
        Assert.Equal(KeepOutcome.StateBudget, table.TryKeep(first, 701, 4));
        Assert.Equal(1000, table.StateBytes);

        // A checkpoint older than the one counted (captured out of order) changes nothing; a newer one shrinks.
        Assert.Equal(KeepOutcome.Kept, table.TryKeep(first, 5, 2));
        Assert.Equal(1000, table.StateBytes);
        Assert.Equal(KeepOutcome.Kept, table.TryKeep(first, 100, 5));
        Assert.Equal(400, table.StateBytes);

        // A full store lets state shrink or stay, never grow.
        Assert.Equal(KeepOutcome.StateBudget, table.TryKeep(second, 301, 2, mayGrow: false));
        Assert.Equal(KeepOutcome.Kept, table.TryKeep(second, 300, 2, mayGrow: false));

        table.Forget(first);
        Assert.Equal(300, table.StateBytes);
        _time.Advance(IdleTimeout);
        await table.PurgeExpiredAsync(default);
        Assert.Equal(0, table.StateBytes);
    }

    [Fact]
    public async Task TheStateBudget_HoldsUnderConcurrentGrowth_AndEndsAtWhatTheKeptSessionsHold()
    {
        var table = NewTable(maxSessions: 1_000_000, maxAnonymous: 1_000_000, maxStateBytes: 100_000);
        var held = new System.Collections.Concurrent.ConcurrentDictionary<SessionId, int>();
        await Parallel.ForAsync(0, 2_000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, _) =>
        {
            var id = SessionId.New();
            await table.PinAsync(id, "b1", default);
            for (var size = 50; size <= 200; size += 50)
            {
                if (table.TryKeep(id, size, size / 50) == KeepOutcome.Kept)
                {
                    held[id] = size;
                }
            }
        });

        Assert.Equal(held.Values.Sum(), table.StateBytes);
        Assert.InRange(table.StateBytes, 80_000, 100_000);
    }

    [Fact]
    public async Task AnonymousSessions_AreNeverWrittenToTheStore_AndPastTheirBudgetTheOldestGoFirst_NeverAKeptOne()
    {
        var table = NewTable(maxAnonymous: 10);
        var kept = await KeptAsync(table, "b1");
        var anonymous = new List<SessionId>();
        for (var i = 0; i < 25; i++)
        {
            var id = SessionId.New();
            await table.PinAsync(id, "b2", default);
            anonymous.Add(id);
        }

        Assert.Equal((1, 10), (table.Count, table.AnonymousCount));
        Assert.NotNull(await table.FindAsync(kept, default));
        foreach (var id in anonymous[..15])
        {
            Assert.Null(await table.FindAsync(id, default));
        }

        foreach (var id in anonymous[15..])
        {
            Assert.NotNull(await table.FindAsync(id, default));
        }

        // Not even the kept one: its first checkpoint stores it, pin and all.
        Assert.Empty(_store.Writes);
    }

    [Fact]
    public async Task KeepsRacingEvictionsAndExpiry_LeaveTheCountsEqualToWhatTheTableHolds_AndEveryKeptSessionFindable()
    {
        var table = NewTable(maxSessions: 1_000_000, maxAnonymous: 8);
        var kept = new System.Collections.Concurrent.ConcurrentBag<SessionId>();
        await Parallel.ForAsync(0, 4_000, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, _) =>
        {
            var id = SessionId.New();
            await table.PinAsync(id, "b1", default);
            if (i % 2 == 0 && table.TryKeep(id, 100, 1) == KeepOutcome.Kept)
            {
                kept.Add(id);
            }
        });

        Assert.Equal(kept.Count, table.Count);
        Assert.Equal(table.Count + table.AnonymousCount, table.CountByDestination().Values.Sum());
        foreach (var id in kept)
        {
            Assert.NotNull(await table.FindAsync(id, default));
        }

        _time.Advance(IdleTimeout);
        await table.PurgeExpiredAsync(default);
        Assert.Equal((0, 0), (table.Count, table.AnonymousCount));
    }

    [Fact]
    public async Task AKeptSessionsPin_IsWrittenThrough_AndExpiryDeletesItFromTheStore()
    {
        var table = NewTable();
        var id = await KeptAsync(table, "b1");

        await table.PinAsync(id, "b2", default);
        _time.Advance(IdleTimeout);
        await table.PurgeExpiredAsync(default);

        Assert.Equal([("claim", id.Value, "b2"), ("delete", id.Value, null)], _store.Writes.Select(w => (w.Kind, w.Id, w.Owner)));
    }

    [Fact]
    public async Task FindAsync_WritesTheIdleTimerAtMostOncePerTouchInterval()
    {
        var table = NewTable();
        var id = await KeptAsync(table, "b1");

        for (var i = 0; i < 20; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(table.TouchInterval / 4));
            await table.FindAsync(id, default);
        }

        Assert.Equal(5, _store.Writes.Count(w => w.Kind == "touch"));
    }

    [Fact]
    public async Task RecordVersion_OnlyMovesForward()
    {
        var table = NewTable();
        var id = SessionId.New();
        await table.PinAsync(id, "b1", default);

        table.RecordVersion(id, 5);
        table.RecordVersion(id, 3);

        Assert.Equal(5, (await table.FindAsync(id, default))!.Version);
    }

    [Fact]
    public async Task LoadAsync_BringsBackLiveSessionsWithPinsAndVersions_AndLeavesExpiredOnesOut()
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var live = SessionId.New();
        var expired = SessionId.New();
        _store.Stored.Add(new SessionSummary(live.Value, "b3", 2, 7, 0, now - 1000));
        _store.Stored.Add(new SessionSummary(expired.Value, "b1", 0, 2, 0, now - (long)IdleTimeout.TotalMilliseconds * 2));
        var table = NewTable();

        await table.LoadAsync(default);

        // Only the live session was loaded (an expired one would be counted until a lookup or purge drops it).
        Assert.Equal(1, table.Count);
        Assert.Equal(new SessionPin(live, "b3", 7, 2), await table.FindAsync(live, default));
        Assert.Null(await table.FindAsync(expired, default));
    }

    [Fact]
    public async Task FindOrLoadAsync_WhereTheTiersMayHoldSessionsItNeverLoaded_TakesALiveOneOnFirstSight_OnlyThere()
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var other = SessionId.New();
        var expired = SessionId.New();
        _store.Stored.Add(new SessionSummary(other.Value, "b2", 3, 9, 100, now - 1000));
        _store.Stored.Add(new SessionSummary(expired.Value, "b1", 0, 2, 0, now - (long)IdleTimeout.TotalMilliseconds * 2));
        var table = NewTable();

        // A local journal that holds everything: an unknown cookie is unknown, and FindAsync never looks.
        Assert.Null(await table.FindOrLoadAsync(other, default));
        _store.MayHoldUnknown = true;
        Assert.Null(await table.FindAsync(other, default));

        Assert.Equal(new SessionPin(other, "b2", 9, 3), await table.FindOrLoadAsync(other, default));
        Assert.Equal((1, 100L), (table.Count, table.StateBytes));
        Assert.Null(await table.FindOrLoadAsync(expired, default));
        Assert.Null(await table.FindOrLoadAsync(SessionId.New(), default));
        Assert.Equal(3, _store.Lookups);

        // Known now: no second lookup.
        Assert.Equal(new SessionPin(other, "b2", 9, 3), await table.FindOrLoadAsync(other, default));
        Assert.Equal(3, _store.Lookups);
    }

    [Fact]
    public async Task FindOrLoadAsync_NeverBringsBackASessionThisTableEndedOrRenewed_ThoughATierStillHoldsIt()
    {
        _store.MayHoldUnknown = true;
        var table = NewTable();
        var ended = await KeptAsync(table, "b1");
        var renewed = await KeptAsync(table, "b2");
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        _store.Stored.Add(new SessionSummary(ended.Value, "b1", 0, 1, 100, now));
        _store.Stored.Add(new SessionSummary(renewed.Value, "b2", 0, 1, 100, now));

        table.Forget(ended);
        table.Rekey(renewed, SessionId.New());

        Assert.Null(await table.FindOrLoadAsync(ended, default));
        Assert.Null(await table.FindOrLoadAsync(renewed, default));
        Assert.Equal(0, _store.Lookups);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AnIdRenewedOrEnded_IsDeadAtOnce_NeverPinnedClaimedOrPlacedAgain_WhetherItWasKeptOrNot(bool kept)
    {
        var table = NewTable();
        var renamed = kept ? await KeptAsync(table, "b1") : SessionId.New();
        var ended = kept ? await KeptAsync(table, "b2") : SessionId.New();
        if (!kept)
        {
            await table.PinAsync(renamed, "b1", default);
            await table.PinAsync(ended, "b2", default);
        }

        var renewed = SessionId.New();
        table.Rekey(renamed, renewed);
        table.Forget(ended);

        foreach (var dead in new[] { renamed, ended })
        {
            Assert.True(table.IsRetired(dead));
            Assert.Null(await table.FindAsync(dead, default));
            await Assert.ThrowsAsync<StoreUnavailableException>(async () => await table.PinAsync(dead, "b3", default));
            Assert.Equal(ClaimOutcome.Lost, (await table.ClaimAsync(dead, "b3", TimeSpan.Zero, default)).Outcome);
            Assert.Null(await table.PlacedAsync(dead, "b3", 1, default));
            Assert.Null(await table.FindAsync(dead, default));
        }

        Assert.False(table.IsRetired(renewed));
        Assert.Equal("b1", (await table.FindAsync(renewed, default))!.DestinationId);
        Assert.Equal((kept ? 1 : 0, kept ? 0 : 1), (table.Count, table.AnonymousCount));

        // Remembered for one idle timeout.
        _time.Advance(IdleTimeout + TimeSpan.FromSeconds(1));
        await table.PurgeExpiredAsync(default);
        Assert.False(table.IsRetired(renamed));
        Assert.False(table.IsRetired(ended));
    }

    [Fact]
    public async Task AClaimWonWhileTheSessionWasRenewed_IsLost_AndTheRowItMayHaveMadeForTheOldIdEnds()
    {
        var id = SessionId.New();
        var gate = new TaskCompletionSource<ClaimOutcome>();
        var blocking = new GatedClaims(_store, gate.Task);
        var gated = new SessionPinTable(Options.Create(new BatonOptions { Sessions = new BatonSessionOptions { IdleTimeout = IdleTimeout, MaxSessions = 100 } }), _time, blocking);
        await gated.PinAsync(id, "b1", default);
        Assert.Equal(KeepOutcome.Kept, gated.TryKeep(id, 100, 1));

        var claim = gated.ClaimAsync(id, "b2", TimeSpan.FromSeconds(6), default).AsTask();
        var renewed = SessionId.New();
        gated.Rekey(id, renewed);
        gate.SetResult(ClaimOutcome.Won);

        Assert.Equal(ClaimOutcome.Lost, (await claim).Outcome);
        Assert.Contains(("delete", id.Value, null), _store.Writes);

        // The new id's pin kept its epoch: the claim of the old one changed nothing of it.
        Assert.Equal(new SessionPin(renewed, "b1", 0, 0), await gated.FindAsync(renewed, default));
    }

    [Fact]
    public async Task RenamedToAsync_WaitsForTheRotationToBeDone_AndNamesTheNewId()
    {
        var table = NewTable();
        var id = await KeptAsync(table, "b1");
        var renewed = SessionId.New();
        table.Rekey(id, renewed);

        var renamed = table.RenamedToAsync(id, default);
        Assert.False(renamed.IsCompleted);
        table.RekeyDone(id);
        Assert.Equal(renewed, await renamed);
        Assert.Null(await table.RenamedToAsync(renewed, default));
    }

    [Fact]
    public async Task FindOrLoadAsync_ConcurrentRequestsOfOneUnknownSession_ShareOneLookup()
    {
        _store.MayHoldUnknown = true;
        var id = SessionId.New();
        _store.Stored.Add(new SessionSummary(id.Value, "b3", 1, 4, 10, _time.GetUtcNow().ToUnixTimeMilliseconds()));
        _store.Gate = new TaskCompletionSource();
        var table = NewTable();

        var lookups = Enumerable.Range(0, 10).Select(_ => table.FindOrLoadAsync(id, default).AsTask()).ToList();
        _store.Gate.SetResult();

        Assert.All(await Task.WhenAll(lookups), pin => Assert.Equal(new SessionPin(id, "b3", 4, 1), pin));
        Assert.Equal(1, _store.Lookups);
        Assert.Equal(1, table.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ASessionIdleHere_IsDeletedFromTheTiersOnlyWhereNoOtherGatewayMayServeIt(bool shared)
    {
        _store.MayHoldUnknown = shared;
        _store.IsShared = shared;
        var table = NewTable();
        var idle = await KeptAsync(table, "b1");
        var ended = await KeptAsync(table, "b2");

        table.Forget(ended);
        _time.Advance(IdleTimeout + TimeSpan.FromSeconds(1));
        Assert.Equal(1, await table.PurgeExpiredAsync(default));

        // An end is an end everywhere; idleness here may be use on another gateway, whose tiers expire it themselves.
        Assert.Contains(("delete", ended.Value, null), _store.Writes);
        Assert.Equal(!shared, _store.Writes.Contains(("delete", idle.Value, null)));
    }

    [Fact]
    public async Task FindOrLoadAsync_AnIdTheTiersDoNotHold_IsNotLookedUpAgainForAFewSeconds()
    {
        _store.MayHoldUnknown = true;
        var table = NewTable();
        var unknown = SessionId.New();

        for (var i = 0; i < 5; i++)
        {
            Assert.Null(await table.FindOrLoadAsync(unknown, default));
        }

        Assert.Equal(1, _store.Lookups);
        _time.Advance(TimeSpan.FromSeconds(6));
        Assert.Null(await table.FindOrLoadAsync(unknown, default));
        Assert.Equal(2, _store.Lookups);
    }

    [Fact]
    public async Task FindOrLoadAsync_WithEveryLookupSlotTakenPastTheJournalsTimeout_RefusesTheRest_AndServesOnceASlotIsFree()
    {
        _store.MayHoldUnknown = true;
        var live = SessionId.New();
        _store.Stored.Add(new SessionSummary(live.Value, "b1", 0, 1, 0, _time.GetUtcNow().ToUnixTimeMilliseconds()));
        _store.Gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var options = new BatonOptions
        {
            Sessions = new BatonSessionOptions { IdleTimeout = IdleTimeout },
            Journal = new BatonJournalOptions { MaxConnections = 2, CommandTimeout = TimeSpan.FromSeconds(1) },
        };
        using var table = new SessionPinTable(Options.Create(options), _time, _store);

        // One slot (half of two connections), held by a lookup the store does not answer: the next waits for it for
        // the journal's timeout, then is refused — a flood of lookups is refused while it lasts, never queued.
        var stuck = table.FindOrLoadAsync(SessionId.New(), default).AsTask();
        await Assert.ThrowsAsync<StoreUnavailableException>(() => table.FindOrLoadAsync(live, default).AsTask());

        _store.Gate.SetResult();
        Assert.Null(await stuck);
        Assert.Equal(new SessionPin(live, "b1", 1, 0), await table.FindOrLoadAsync(live, default));
    }

    /// <summary>The recording persistence, with claims answered when the test says.</summary>
    private sealed class GatedClaims(RecordingPersistence inner, Task<ClaimOutcome> answer) : IPinPersistence
    {
        public bool MayHoldUnknown => inner.MayHoldUnknown;

        public bool IsShared => inner.IsShared;

        public bool IsListening => inner.IsListening;

        public Task<ClaimOutcome> ClaimAsync(string sessionId, string owner, long fromEpoch, long now, TimeSpan lease) => answer;

        public Task ReleaseAsync(string sessionId, string? owner, long epoch) => inner.ReleaseAsync(sessionId, owner, epoch);

        public void Touch(string sessionId, long now) => inner.Touch(sessionId, now);

        public void End(string sessionId) => inner.End(sessionId);

        public Task<List<SessionSummary>> LoadLiveAsync(long cutoff, CancellationToken cancellationToken) => inner.LoadLiveAsync(cutoff, cancellationToken);

        public Task<SessionSummary?> FindAsync(string sessionId, CancellationToken cancellationToken) => inner.FindAsync(sessionId, cancellationToken);

        public void Listen(Action<PinNotice> onNotice, Action onMissed) => inner.Listen(onNotice, onMissed);
    }

    private sealed class RecordingPersistence : IPinPersistence
    {
        public List<(string Kind, string Id, string? Owner)> Writes { get; } = [];

        public List<SessionSummary> Stored { get; } = [];

        /// <summary>What every claim answers.</summary>
        public ClaimOutcome Claims { get; set; } = ClaimOutcome.Won;

        public bool IsListening { get; set; }

        /// <summary>The table's listeners, once it listens: a test plays the other gateways' notices through them.</summary>
        public Action<PinNotice>? Heard { get; private set; }

        public Action? Missed { get; private set; }

        public Task<ClaimOutcome> ClaimAsync(string sessionId, string owner, long fromEpoch, long now, TimeSpan lease)
        {
            Writes.Add(("claim", sessionId, owner));
            return Task.FromResult(Claims);
        }

        public Task ReleaseAsync(string sessionId, string? owner, long epoch)
        {
            Writes.Add(("release", sessionId, owner));
            return Task.CompletedTask;
        }

        public void Listen(Action<PinNotice> onNotice, Action onMissed) => (Heard, Missed) = (onNotice, onMissed);

        public void Touch(string sessionId, long now) => Writes.Add(("touch", sessionId, null));

        public void End(string sessionId) => Writes.Add(("delete", sessionId, null));

        public Task<List<SessionSummary>> LoadLiveAsync(long cutoff, CancellationToken cancellationToken)
            => Task.FromResult(Stored.Where(p => p.LastAccess >= cutoff).ToList());

        public bool MayHoldUnknown { get; set; }

        public bool IsShared { get; set; }

        public int Lookups => Volatile.Read(ref _lookups);

        /// <summary>When set, lookups wait for it.</summary>
        public TaskCompletionSource? Gate { get; set; }

        private int _lookups;

        public async Task<SessionSummary?> FindAsync(string sessionId, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _lookups);
            if (Gate is not null)
            {
                await Gate.Task;
            }

            return Stored.FirstOrDefault(p => p.SessionId == sessionId);
        }
    }
}
