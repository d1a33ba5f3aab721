using Baton.LoadTest;

namespace Baton.Tests.LoadTest;

[Trait("Category", "Unit")]
public sealed class SessionCheckerTests
{
    private static Dictionary<string, int> Cart(params (string Sku, int Qty)[] items) => items.ToDictionary(i => i.Sku, i => i.Qty, StringComparer.Ordinal);

    [Fact]
    public void TheCartTheUserWrote_IsOk()
        => Assert.Equal(Verdict.Ok, SessionChecker.CheckCart(Cart(("a", 2), ("b", 1)), Cart(("b", 1), ("a", 2))));

    [Fact]
    public void AnEmptyCart_WhenTheUserHadItems_IsALostSession()
        => Assert.Equal(Verdict.Lost, SessionChecker.CheckCart(Cart(("a", 2)), Cart()));

    [Fact]
    public void AnOlderCart_IsStale()
        => Assert.Equal(Verdict.Stale, SessionChecker.CheckCart(Cart(("a", 3), ("b", 1)), Cart(("a", 2))));

    [Theory]
    [InlineData("a", 4)]
    [InlineData("z", 1)]
    public void ACartWithWhatTheUserNeverWrote_IsAMismatch(string sku, int qty)
        => Assert.Equal(Verdict.Mismatch, SessionChecker.CheckCart(Cart(("a", 3)), Cart((sku, qty))));

    [Fact]
    public void AnAddAnsweredWithOnlyTheNewItem_IsASessionThatStartedOver()
        => Assert.Equal(Verdict.Lost, SessionChecker.CheckAdd(Cart(("a", 3)), "b", Cart(("b", 1))));

    [Fact]
    public void AnAddAnsweredWithTheExpectedCart_IsOk()
        => Assert.Equal(Verdict.Ok, SessionChecker.CheckAdd(Cart(("a", 3)), "a", Cart(("a", 4))));

    [Fact]
    public void AnAddAnsweredWithAnotherUsersCart_IsAMismatch()
        => Assert.Equal(Verdict.Mismatch, SessionChecker.CheckAdd(Cart(("a", 3)), "a", Cart(("a", 4), ("q", 7))));

    [Fact]
    public void ABlobWithOtherBytes_IsAMismatch_AndAnEmptyOne_IsLost()
    {
        Assert.Equal(Verdict.Ok, SessionChecker.CheckBlob("ABCD", 1024, "abcd", 1024));
        Assert.Equal(Verdict.Mismatch, SessionChecker.CheckBlob("ABCD", 1024, "ABCE", 1024));
        Assert.Equal(Verdict.Lost, SessionChecker.CheckBlob("ABCD", 1024, "E3B0", 0));
    }

    [Fact]
    public void AfterAWriteWithNoAnswer_EitherOutcomeIsAccepted_ButNothingMore()
    {
        var expected = Cart(("a", 1));
        var unconfirmed = Cart(("b", 1));
        Assert.True(SessionChecker.WithinUnconfirmed(expected, unconfirmed, Cart(("a", 1))));
        Assert.True(SessionChecker.WithinUnconfirmed(expected, unconfirmed, Cart(("a", 1), ("b", 1))));
        Assert.False(SessionChecker.WithinUnconfirmed(expected, unconfirmed, Cart(("a", 1), ("b", 2))));
        Assert.False(SessionChecker.WithinUnconfirmed(expected, unconfirmed, Cart(("b", 1))));
    }
}
