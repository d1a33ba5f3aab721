using Baton.Protocol;

namespace Baton.Tests.Backend;

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
}
