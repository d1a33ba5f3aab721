using Baton.Gateway.Configuration;
using Baton.Gateway.Sessions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Baton.Tests.Sessions;

public sealed class InMemorySessionPinTableTests
{
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(20);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    private InMemorySessionPinTable NewTable(int maxSessions = 100)
        => new(Options.Create(new BatonOptions { Sessions = new BatonSessionOptions { IdleTimeout = IdleTimeout, MaxSessions = maxSessions } }), _time);

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
        Assert.Equal(new SessionPin(id, "b1"), await table.FindAsync(id, default));

        await table.PinAsync(id, "b3", default);
        Assert.Equal(new SessionPin(id, "b3"), await table.FindAsync(id, default));
        Assert.Equal(1, table.Count);
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
}
