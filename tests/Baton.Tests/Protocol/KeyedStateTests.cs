using Baton.Protocol;

namespace Baton.Tests.Protocol;

[Trait("Category", "Unit")]
public sealed class KeyedStateTests
{
    [Fact]
    public void Encode_ThenDecode_GivesTheSameKeysAndBytes()
    {
        var values = new Dictionary<string, byte[]>
        {
            ["counter"] = [0, 0, 0, 7],
            ["ünïcødé key"] = [],
            ["big"] = Enumerable.Range(0, 100_000).Select(i => (byte)i).ToArray(),
        };

        Assert.True(KeyedState.TryDecode(KeyedState.Encode(values), out var decoded));

        Assert.Equal(values.Keys.Order(), decoded.Keys.Order());
        Assert.All(values, kv => Assert.Equal(kv.Value, decoded[kv.Key]));
    }

    [Fact]
    public void Encode_IsIndependentOfInsertionOrder()
    {
        var a = new Dictionary<string, byte[]> { ["x"] = [1], ["y"] = [2] };
        var b = new Dictionary<string, byte[]> { ["y"] = [2], ["x"] = [1] };

        Assert.Equal(KeyedState.Encode(a), KeyedState.Encode(b));
    }

    [Fact]
    public void AnEmptySession_IsAnEmptyState()
    {
        Assert.Empty(KeyedState.Encode(new Dictionary<string, byte[]>()));
        Assert.True(KeyedState.TryDecode([], out var decoded));
        Assert.Empty(decoded);
    }

    [Theory]
    [InlineData(new byte[] { 2 })]
    [InlineData(new byte[] { 1, 5, (byte)'a' })]
    [InlineData(new byte[] { 1, 1, (byte)'a', 9, 1 })]
    [InlineData(new byte[] { 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF })]
    [InlineData(new byte[] { 1, 1, 0xC3, 0 })]
    [InlineData(new byte[] { 1, 1, (byte)'a', 0, 1, (byte)'a', 0 })]
    public void TryDecode_RefusesCorruptState(byte[] state)
    {
        Assert.False(KeyedState.TryDecode(state, out _));
    }

    [Fact]
    public void ADelta_AppliedToAState_SetsAndRemovesItsKeys_AndLeavesTheRest()
    {
        var state = KeyedState.Encode(new Dictionary<string, byte[]> { ["big"] = new byte[70_000], ["n"] = [1], ["gone"] = [9] });
        var delta = KeyedState.EncodeDelta([new("n", [2]), new("gone", null), new("new", [7, 7]), new("never-there", null)])!;

        Assert.True(KeyedState.IsValidDelta(delta));
        Assert.True(delta.Length < 40);
        Assert.Equal(delta.Length, KeyedState.DeltaSize([new("n", [2]), new("gone", null), new("new", [7, 7]), new("never-there", null)]));
        Assert.True(KeyedState.TryApply(state, delta, out var applied));
        Assert.True(KeyedState.TryDecode(applied, out var values));
        Assert.Equal(["big", "n", "new"], values.Keys.Order(StringComparer.Ordinal));
        Assert.Equal([2], values["n"]);
        Assert.Equal([7, 7], values["new"]);
        Assert.Equal(70_000, values["big"].Length);
        Assert.Equal(KeyedState.Encode(values), applied);
        Assert.Equal(applied.Length, KeyedState.SizeOf(values));
    }

    [Fact]
    public void ADelta_AppliesToAnEmptyState_AndRemovingEveryKeyGivesAnEmptyState()
    {
        Assert.True(KeyedState.TryApply([], KeyedState.EncodeDelta([new("a", [1])])!, out var one));
        Assert.Equal(KeyedState.Encode(new Dictionary<string, byte[]> { ["a"] = [1] }), one);
        Assert.True(KeyedState.TryApply(one, KeyedState.EncodeDelta([new("a", null)])!, out var none));
        Assert.Empty(none);
        Assert.Null(KeyedState.EncodeDelta([]));
    }

    [Fact]
    public void AKeyWithALoneSurrogate_MakesNoDelta()
    {
        Assert.Null(KeyedState.EncodeDelta([new("\uD800a", [1]), new("\uE000", [2])]));
        Assert.NotNull(KeyedState.EncodeDelta([new("\uD83D\uDE00", [1]), new("\uE000", [2])]));
    }

    [Fact]
    public void ADelta_ToAStateOfAnotherFormat_DoesNotApply()
    {
        Assert.False(KeyedState.TryApply("{\"n\":1}"u8.ToArray(), KeyedState.EncodeDelta([new("n", [2])])!, out _));
    }

    [Theory]
    [InlineData(new byte[] { 2 })]
    [InlineData(new byte[] { 1, 1, 1, (byte)'a', 0 })]
    [InlineData(new byte[] { 2, 3, 1, (byte)'a' })]
    [InlineData(new byte[] { 2, 1, 1, (byte)'a' })]
    [InlineData(new byte[] { 2, 1, 1, (byte)'a', 5, 1 })]
    [InlineData(new byte[] { 2, 0, 1, (byte)'b', 0, 1, (byte)'a' })]
    [InlineData(new byte[] { 2, 0, 1, (byte)'a', 0, 1, (byte)'a' })]
    [InlineData(new byte[] { 2, 0, 1, 0xC3 })]
    public void AMalformedDelta_IsRefused(byte[] delta)
    {
        Assert.False(KeyedState.IsValidDelta(delta));
        Assert.False(KeyedState.TryApply([], delta, out _));
    }
}
