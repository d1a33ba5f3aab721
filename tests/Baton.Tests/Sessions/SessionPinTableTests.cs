using Baton.Gateway.Configuration;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Baton.Tests.Sessions;

public sealed class SessionPinTableTests
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(20);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    private readonly RecordingPersistence _store = new();

    private SessionPinTable NewTable(int maxSessions = 100)
        => new(Options.Create(new BatonOptions { Sessions = new BatonSessionOptions { IdleTimeout = IdleTimeout, MaxSessions = maxSessions } }), _time, _store);

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
        Assert.Equal(1, table.Count);
    }

    [Fact]
    public async Task PinWhenAsync_WritesThePinAlongside_ButMovesItInMemoryOnlyWhenReady()
    {
        var table = NewTable();
        var id = SessionId.New();
        await table.PinAsync(id, "b1", default);
        var ready = new TaskCompletionSource<bool>();

        var pinning = table.PinWhenAsync(id, "b2", ready.Task, default).AsTask();

        // The durable write has started; requests still follow the old pin.
        Assert.Contains(("pin", id.Value, "b2"), _store.Writes);
        Assert.Equal(new SessionPin(id, "b1", 0, 0), await table.FindAsync(id, default));
        Assert.False(pinning.IsCompleted);

        ready.SetResult(true);
        Assert.Equal(new SessionPin(id, "b2", 0, 1), await pinning);
        Assert.Equal(new SessionPin(id, "b2", 0, 1), await table.FindAsync(id, default));
    }

    [Fact]
    public async Task PinWhenAsync_NotReady_LeavesThePinInMemory()
    {
        var table = NewTable();
        var id = SessionId.New();
        await table.PinAsync(id, "b1", default);

        Assert.Null(await table.PinWhenAsync(id, "b2", Task.FromResult(false), default));
        Assert.Equal(new SessionPin(id, "b1", 0, 0), await table.FindAsync(id, default));

        // The next move is still one epoch on from the pin in force.
        Assert.Equal(new SessionPin(id, "b3", 0, 1), await table.PinWhenAsync(id, "b3", Task.FromResult(true), default));
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
        Assert.Equal(1, table.Count);
        Assert.NotNull(await table.FindAsync(recent, default));
    }

    [Fact]
    public async Task HasCapacity_IsFalseAtMaxSessions_AndTrueAgainOnceOneExpires()
    {
        var table = NewTable(maxSessions: 2);
        await table.PinAsync(SessionId.New(), "b1", default);
        Assert.True(table.HasCapacity);
        await table.PinAsync(SessionId.New(), "b1", default);
        Assert.False(table.HasCapacity);

        _time.Advance(IdleTimeout);
        await table.PurgeExpiredAsync(default);

        Assert.True(table.HasCapacity);
    }

    [Fact]
    public async Task PinAsync_WritesThePinThrough_AndExpiryDeletesItFromTheStore()
    {
        var table = NewTable();
        var id = SessionId.New();

        await table.PinAsync(id, "b2", default);
        _time.Advance(IdleTimeout);
        await table.PurgeExpiredAsync(default);

        Assert.Equal([("pin", id.Value, "b2"), ("delete", id.Value, null)], _store.Writes.Select(w => (w.Kind, w.Id, w.Owner)));
    }

    [Fact]
    public async Task FindAsync_WritesTheIdleTimerAtMostOncePerTouchInterval()
    {
        var table = NewTable();
        var id = SessionId.New();
        await table.PinAsync(id, "b1", default);

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
        _store.Stored.Add(new StoredPin(live.Value, 7, "b3", 2, now - 1000));
        _store.Stored.Add(new StoredPin(expired.Value, 2, "b1", 0, now - (long)IdleTimeout.TotalMilliseconds * 2));
        var table = NewTable();

        await table.LoadAsync(default);

        Assert.Equal(new SessionPin(live, "b3", 7, 2), await table.FindAsync(live, default));
        Assert.Null(await table.FindAsync(expired, default));
    }

    private sealed class RecordingPersistence : IPinPersistence
    {
        public List<(string Kind, string Id, string? Owner)> Writes { get; } = [];

        public List<StoredPin> Stored { get; } = [];

        public Task PinAsync(string sessionId, string owner, long epoch, long now)
        {
            Writes.Add(("pin", sessionId, owner));
            return Task.CompletedTask;
        }

        public void Touch(string sessionId, long now) => Writes.Add(("touch", sessionId, null));

        public void Delete(string sessionId) => Writes.Add(("delete", sessionId, null));

        public Task<List<StoredPin>> LoadLiveAsync(long cutoff, CancellationToken cancellationToken)
            => Task.FromResult(Stored.Where(p => p.LastAccess >= cutoff).ToList());
    }
}
