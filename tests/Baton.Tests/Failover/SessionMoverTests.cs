using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Failover;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy.Model;

namespace Baton.Tests.Failover;

/// <summary>Moving a session off a failed destination, over in-memory tiers, a real pin table and a fake restore channel.</summary>
[Trait("Category", "Unit")]
public sealed class SessionMoverTests : IDisposable
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly MemoryTier _redis = new("redis");
    private readonly MemoryTier _journal = new("journal");
    private readonly FakeRestorer _restorer = new();
    private readonly ClusterState _cluster = new("demo");
    private readonly DestinationState _b1 = new("b1");
    private readonly DestinationState _b2 = new("b2");
    private readonly DestinationState _b3 = new("b3");
    private readonly SessionPinTable _pins;
    private readonly SessionMover _mover;

    public SessionMoverTests()
    {
        var options = Options.Create(new BatonOptions());
        var metrics = new BatonMetrics(_services.GetRequiredService<IMeterFactory>());
        var store = new SessionStore(_redis, _journal, options, metrics, NullLogger<SessionStore>.Instance);
        _pins = new SessionPinTable(options, _time, store);
        _mover = new SessionMover(_pins, store, _restorer, options, _time, metrics, new FailoverEvents(), NullLogger<SessionMover>.Instance);

        // b1 has failed; b2 is busier than b3.
        _cluster.DestinationsState = new ClusterDestinationsState([_b1, _b2, _b3], [_b2, _b3]);
        _b2.ConcurrentRequestCount = 5;
    }

    public void Dispose() => _services.Dispose();

    [Fact]
    public async Task AFailedSession_IsRestoredOnTheLeastBusyHealthyDestination_WithItsNewestCheckpoint_InTheNextEpoch()
    {
        var session = await KeptOnB1Async(version: 3);

        var placed = await _mover.MoveAsync(session, _cluster, "b1", new HashSet<string>(), "test", CancellationToken.None);

        Assert.Same(_b3, placed);
        Assert.Equal([("b3", 3L, 1L)], _restorer.Restores.Select(r => (r.Destination, r.Version, r.Epoch)));
        Assert.Equal(new SessionPin(session.Id, "b3", 3, 1), await _pins.FindAsync(session.Id, CancellationToken.None));
        Assert.Equal(("b3", 1L), (session.PinnedDestinationId, session.Epoch));

        // The move is durable: the journal holds the new owner in the new epoch, with the state it had.
        Assert.Equal(("b3", 1L, 3L), (_journal[session.Id.Value]!.Owner, _journal[session.Id.Value]!.Epoch, _journal[session.Id.Value]!.Version));
    }

    [Fact]
    public async Task ADestinationThatRefusesTheRestore_IsSkipped_AndTheSessionLandsOnTheNext()
    {
        var session = await KeptOnB1Async(version: 2);
        _restorer.Refuse.Add("b3");

        var placed = await _mover.MoveAsync(session, _cluster, "b1", new HashSet<string>(), "test", CancellationToken.None);

        Assert.Same(_b2, placed);
        Assert.Equal(["b3", "b2"], _restorer.Restores.Select(r => r.Destination));
        Assert.Equal("b2", (await _pins.FindAsync(session.Id, CancellationToken.None))!.DestinationId);
    }

    [Fact]
    public async Task ManyRequestsOfOneSessionFailingTogether_RestoreItOnce_AndAllFollowTheNewPin()
    {
        var first = await KeptOnB1Async(version: 4);
        _restorer.Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var moves = Enumerable.Range(0, 8)
            .Select(_ => new BatonSessionFeature(first.Id, "b1", first.Version, first.Epoch, isNew: false))
            .Select(s => _mover.MoveAsync(s, _cluster, "b1", new HashSet<string>(), "test", CancellationToken.None))
            .ToList();
        await Eventually.TrueAsync(() => !_restorer.Restores.IsEmpty, TimeSpan.FromSeconds(5), "one restore should start");
        _restorer.Hold.SetResult();

        Assert.All(await Task.WhenAll(moves), placed => Assert.Same(_b3, placed));
        Assert.Single(_restorer.Restores);
    }

    [Fact]
    public async Task WithTheStoreUnreadable_TheSessionIsNeverRestoredEmpty_AndStaysWhereItWas()
    {
        var session = await KeptOnB1Async(version: 3);
        _journal.Down = true;
        _redis.Down = true;

        await Assert.ThrowsAsync<StoreUnavailableException>(() => _mover.MoveAsync(session, _cluster, "b1", new HashSet<string>(), "test", CancellationToken.None));

        Assert.Empty(_restorer.Restores);
        Assert.Equal(new SessionPin(session.Id, "b1", 3, 0), await _pins.FindAsync(session.Id, CancellationToken.None));
    }

    [Fact]
    public async Task TwoGatewaysMovingOneSessionTogether_RestoreItOnce_AndTheLoserFollowsTheWinnersRestore()
    {
        // Two gateways' tables and movers over one shared journal: each knows the session from the journal.
        var shared = new MemoryTier("journal", isShared: true);
        var options = Options.Create(new BatonOptions());
        var metrics = new BatonMetrics(_services.GetRequiredService<IMeterFactory>());
        var gateways = Enumerable.Range(0, 2).Select(_ =>
        {
            var store = new SessionStore(new MemoryTier("redis"), shared, options, metrics, NullLogger<SessionStore>.Instance);
            var pins = new SessionPinTable(options, _time, store);
            return (Pins: pins, Mover: new SessionMover(pins, store, _restorer, options, _time, metrics, new FailoverEvents(), NullLogger<SessionMover>.Instance));
        }).ToList();
        var id = SessionId.New();
        Assert.Equal(SaveOutcome.Stored, await shared.CheckpointAsync(TestRecords.Checkpoint(id.Value, 3, [3], "b1", _time.GetUtcNow().ToUnixTimeMilliseconds())));
        foreach (var gateway in gateways)
        {
            Assert.Equal(new SessionPin(id, "b1", 3, 0), await gateway.Pins.FindOrLoadAsync(id, CancellationToken.None));
        }

        _restorer.Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var moves = gateways.Select(g => g.Mover.MoveAsync(new BatonSessionFeature(id, "b1", 3, 0, isNew: false), _cluster, "b1", new HashSet<string>(), "test", CancellationToken.None)).ToList();
        await Eventually.TrueAsync(() => !_restorer.Restores.IsEmpty, TimeSpan.FromSeconds(5), "one restore should start");
        _restorer.Hold.SetResult();

        // The loser polls the shared truth on the (fake) clock until the winner's lease is released.
        var all = Task.WhenAll(moves);
        for (var i = 0; i < 400 && !all.IsCompleted; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(25));
            await Task.Delay(5);
        }

        Assert.All(await all, placed => Assert.Same(_b3, placed));
        Assert.Equal([("b3", 3L, 1L)], _restorer.Restores.Select(r => (r.Destination, r.Version, r.Epoch)));
        foreach (var gateway in gateways)
        {
            Assert.Equal(new SessionPin(id, "b3", 3, 1), await gateway.Pins.FindAsync(id, CancellationToken.None));
        }

        Assert.Equal(("b3", 1L, 0L), (shared[id.Value]!.Owner, shared[id.Value]!.Epoch, shared[id.Value]!.MovingUntil));
    }

    [Fact]
    public async Task AMoverThatDiesMidRestore_IsTakenOverOnceItsLeaseRunsOut_InTheEpochAfterIts()
    {
        var shared = new MemoryTier("journal", isShared: true);
        var options = Options.Create(new BatonOptions());
        var metrics = new BatonMetrics(_services.GetRequiredService<IMeterFactory>());
        var store = new SessionStore(new MemoryTier("redis"), shared, options, metrics, NullLogger<SessionStore>.Instance);
        var pins = new SessionPinTable(options, _time, store);
        var mover = new SessionMover(pins, store, _restorer, options, _time, metrics, new FailoverEvents(), NullLogger<SessionMover>.Instance);
        var id = SessionId.New();
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        Assert.Equal(SaveOutcome.Stored, await shared.CheckpointAsync(TestRecords.Checkpoint(id.Value, 3, [3], "b1", now)));
        Assert.NotNull(await pins.FindOrLoadAsync(id, CancellationToken.None));

        // Another gateway claimed the move to b2 and died before its restore: its lease (RestoreTimeout + 1 s) stands.
        Assert.Equal(ClaimOutcome.Won, await shared.ClaimAsync(id.Value, "b2", 0, now, now + 60_000, now + 6_000));
        var session = new BatonSessionFeature(id, "b1", 3, 0, isNew: false);
        var moving = mover.MoveAsync(session, _cluster, "b1", new HashSet<string>(), "test", CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(5));
        await Task.Delay(50);
        Assert.False(moving.IsCompleted);
        Assert.Empty(_restorer.Restores);

        // Past the lease this gateway follows the claim's target; that backend holds no copy (it answers stale), so
        // the refresh claims the epoch after the dead mover's and restores there, once.
        for (var i = 0; i < 200 && !moving.IsCompleted; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(25));
            await Task.Delay(5);
        }

        Assert.Same(_b2, await moving);
        Assert.Same(_b2, await mover.RefreshAsync(session, _cluster, _b2, CancellationToken.None));
        Assert.Equal([("b2", 3L, 2L)], _restorer.Restores.Select(r => (r.Destination, r.Version, r.Epoch)));
        Assert.Equal(("b2", 2L, 0L), (shared[id.Value]!.Owner, shared[id.Value]!.Epoch, shared[id.Value]!.MovingUntil));
    }

    /// <summary>A session pinned on b1 whose backend wrote <paramref name="version"/> checkpoints, stored in both tiers.</summary>
    private async Task<BatonSessionFeature> KeptOnB1Async(long version)
    {
        var id = SessionId.New();
        await _pins.PinAsync(id, "b1", CancellationToken.None);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var v = 1; v <= version; v++)
        {
            Assert.Equal(SaveOutcome.Stored, await _journal.CheckpointAsync(TestRecords.Checkpoint(id.Value, v, [(byte)v], "b1", now)));
            Assert.Equal(SaveOutcome.Stored, await _redis.CheckpointAsync(TestRecords.Checkpoint(id.Value, v, [(byte)v], "b1", now)));
        }

        Assert.Equal(KeepOutcome.Kept, _pins.TryKeep(id, 1, version));
        _pins.RecordVersion(id, version);
        return new BatonSessionFeature(id, "b1", version, 0, isNew: false);
    }

    private sealed class FakeRestorer : ISessionRestorer
    {
        public ConcurrentQueue<(string Destination, long Version, long Epoch)> Restores { get; } = new();

        public HashSet<string> Refuse { get; } = [];

        public TaskCompletionSource? Hold { get; set; }

        public async Task<RestoreResult> RestoreAsync(ClusterState cluster, DestinationState destination, SessionId session, SessionRecord? record, long epoch, CancellationToken cancellationToken)
        {
            Restores.Enqueue((destination.DestinationId, record?.Version ?? 0, epoch));
            if (Hold is { } hold)
            {
                await hold.Task.WaitAsync(cancellationToken);
            }

            var accepted = !Refuse.Contains(destination.DestinationId);
            return new RestoreResult(accepted, accepted ? System.Net.HttpStatusCode.NoContent : System.Net.HttpStatusCode.Conflict, null);
        }
    }
}
