using Baton.Backend;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Baton.Tests.Backend;

/// <summary>
/// The restore nonces a backend remembers: each is refused a second time for as long as its timestamp is within
/// the clock skew (after which the timestamp check refuses the restore anyway), the guard holds at most
/// <c>Baton:Backend:MaxRememberedRestores</c>, and a full guard makes room only from nonces that have left the window.
/// </summary>
[Trait("Category", "Unit")]
public sealed class ReplayGuardTests
{
    private static readonly TimeSpan Skew = TimeSpan.FromSeconds(60);
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    [Fact]
    public void ANonce_IsTakenOnce_AndReplayedAfter()
    {
        var guard = Guard(capacity: 10);

        Assert.Equal(ReplayGuard.Outcome.First, guard.Remember("a", Now));
        Assert.Equal(ReplayGuard.Outcome.Replayed, guard.Remember("a", Now));
        Assert.Equal(ReplayGuard.Outcome.First, guard.Remember("b", Now));

        // Still refused late in the window, even with another timestamp (the nonce is what counts).
        _time.Advance(Skew);
        Assert.Equal(ReplayGuard.Outcome.Replayed, guard.Remember("a", Now));
    }

    [Fact]
    public void AFullGuard_RefusesNewNonces_UntilARememberedOneLeavesTheWindow_ThenTakesOneInItsPlace()
    {
        var guard = Guard(capacity: 2);
        var start = Now;
        Assert.Equal(ReplayGuard.Outcome.First, guard.Remember("a", start));
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(ReplayGuard.Outcome.First, guard.Remember("b", Now));

        Assert.Equal(ReplayGuard.Outcome.Full, guard.Remember("c", Now));

        // At the window's very edge "a" could still pass the timestamp check: it stays remembered.
        _time.SetUtcNow(DateTimeOffset.FromUnixTimeMilliseconds(start) + Skew);
        Assert.Equal(ReplayGuard.Outcome.Full, guard.Remember("c", Now));

        // One millisecond later it could not: its place is free, and "b" (10 s younger) is still remembered.
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(ReplayGuard.Outcome.First, guard.Remember("c", Now));
        Assert.Equal(ReplayGuard.Outcome.Full, guard.Remember("d", Now));
    }

    [Fact]
    public void ANonceWithAFutureTimestamp_IsRememberedUntilThatTimestampLeavesTheWindow()
    {
        var guard = Guard(capacity: 1);
        var ahead = Now + (long)Skew.TotalMilliseconds;
        Assert.Equal(ReplayGuard.Outcome.First, guard.Remember("early", ahead));

        // Two skews on from now the restore's timestamp is exactly one skew old: still acceptable, still remembered.
        _time.Advance(2 * Skew);
        Assert.Equal(ReplayGuard.Outcome.Full, guard.Remember("next", Now));

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(ReplayGuard.Outcome.First, guard.Remember("next", Now));
    }

    private ReplayGuard Guard(int capacity)
        => new(Options.Create(new BatonBackendOptions { Backend = new BatonBackendLimits { MaxRememberedRestores = capacity, ClockSkew = Skew } }), _time);
}
