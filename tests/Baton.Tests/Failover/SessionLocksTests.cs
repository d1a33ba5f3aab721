using Baton.Gateway.Failover;
using Baton.Gateway.Sessions;

namespace Baton.Tests.Failover;

[Trait("Category", "Unit")]
public sealed class SessionLocksTests
{
    [Fact]
    public async Task TryEnterAsync_TwoSessions_HoldTheirLocksAtOnce_WhileASecondHolderOfOneWaitsItsTimeout()
    {
        var locks = new SessionLocks();
        var (a, b) = (SessionId.New(), SessionId.New());

        using var first = await locks.TryEnterAsync(a, TimeSpan.Zero, default);
        using var other = await locks.TryEnterAsync(b, TimeSpan.Zero, default);
        var second = await locks.TryEnterAsync(a, TimeSpan.FromMilliseconds(50), default);

        Assert.NotNull(first);
        Assert.NotNull(other);
        Assert.Null(second);
    }

    [Fact]
    public async Task TryEnterAsync_AReleasedLock_PassesToTheNextWaiter_AndIsDroppedOnceNobodyNeedsIt()
    {
        var locks = new SessionLocks();
        var id = SessionId.New();
        var first = await locks.TryEnterAsync(id, TimeSpan.Zero, default);
        var waiting = locks.TryEnterAsync(id, TimeSpan.FromMinutes(1), default);
        Assert.False(waiting.IsCompleted);

        first!.Dispose();
        using (var second = await waiting)
        {
            Assert.NotNull(second);
            Assert.Equal(1, locks.Count);
        }

        Assert.Equal(0, locks.Count);
        using var again = await locks.TryEnterAsync(id, TimeSpan.Zero, default);
        Assert.NotNull(again);
    }
}
