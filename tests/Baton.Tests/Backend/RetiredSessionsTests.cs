using Baton.Backend;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Baton.Tests.Backend;

/// <summary>
/// The ids a backend rotated away from or ended: each remembered for its session's idle timeout, at most
/// <c>Baton:Backend:MaxRetiredSessions</c> of them, the oldest forgotten first when more come.
/// </summary>
[Trait("Category", "Unit")]
public sealed class RetiredSessionsTests
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public void ARetiredId_IsRememberedForItsSessionsTtl_ThenForgotten()
    {
        var retired = Memory(capacity: 10);
        retired.Retire("a", ttlMilliseconds: 60_000);
        Assert.True(retired.IsRetired("a"));
        Assert.False(retired.IsRetired("b"));

        _time.Advance(TimeSpan.FromMilliseconds(59_999));
        Assert.True(retired.IsRetired("a"));

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(retired.IsRetired("a"));
        retired.Forget();
        Assert.Equal(0, retired.Count);
    }

    [Fact]
    public void PastItsCapacity_TheOldestRetirementsAreForgottenFirst_AndExpiredOnesBeforeThem()
    {
        var retired = Memory(capacity: 2);
        retired.Retire("short", ttlMilliseconds: 1_000);
        retired.Retire("old", ttlMilliseconds: 60_000);
        _time.Advance(TimeSpan.FromSeconds(2));

        // "short" has expired: its place is taken first, and "old" stays.
        retired.Retire("new", ttlMilliseconds: 60_000);
        Assert.Equal(2, retired.Count);
        Assert.True(retired.IsRetired("old"));
        Assert.True(retired.IsRetired("new"));

        // Full of live ids: the oldest goes.
        retired.Retire("newer", ttlMilliseconds: 60_000);
        Assert.Equal(2, retired.Count);
        Assert.False(retired.IsRetired("old"));
        Assert.True(retired.IsRetired("new"));
        Assert.True(retired.IsRetired("newer"));
    }

    [Fact]
    public void AnIdRetiredAgain_IsRememberedFromTheLaterRetirement_AndCountedOnce()
    {
        var retired = Memory(capacity: 2);
        retired.Retire("a", ttlMilliseconds: 10_000);
        _time.Advance(TimeSpan.FromSeconds(5));
        retired.Retire("a", ttlMilliseconds: 10_000);
        retired.Retire("b", ttlMilliseconds: 60_000);
        Assert.Equal(2, retired.Count);

        _time.Advance(TimeSpan.FromSeconds(6));
        retired.Forget();
        Assert.True(retired.IsRetired("a"));
        Assert.Equal(2, retired.Count);

        _time.Advance(TimeSpan.FromSeconds(4));
        retired.Forget();
        Assert.False(retired.IsRetired("a"));
        Assert.Equal(1, retired.Count);
    }

    private RetiredSessions Memory(int capacity)
        => new(Options.Create(new BatonBackendOptions { Backend = new BatonBackendLimits { MaxRetiredSessions = capacity } }), _time);
}
