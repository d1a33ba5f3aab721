using Baton.Backend;

namespace Baton.Tests.Backend;

[Trait("Category", "Unit")]
public sealed class BatonSessionTests
{
    private static readonly IReadOnlyDictionary<string, byte[]> Committed = new Dictionary<string, byte[]> { ["a"] = [1], ["b"] = [2] };

    [Fact]
    public void Reading_DoesNotMakeTheSessionDirty()
    {
        var session = new BatonSession("s", Committed);

        Assert.True(session.TryGetValue("a", out _));
        Assert.Equal(["a", "b"], session.Keys.Order());
        Assert.False(session.IsDirty);
    }

    [Fact]
    public void Changes_AreVisibleAtOnce_AndAppliedOnTopOfWhateverIsCommitted()
    {
        var session = new BatonSession("s", Committed);
        session.Set("c", [3]);
        session.Remove("a");

        Assert.False(session.TryGetValue("a", out _));
        Assert.True(session.IsDirty);
        var newer = new Dictionary<string, byte[]> { ["a"] = [1], ["b"] = [20], ["d"] = [4] };
        var applied = session.ApplyTo(newer);
        Assert.Equal(["b", "c", "d"], applied.Keys.Order());
        Assert.Equal([20], applied["b"]);
    }

    [Fact]
    public void Clear_ThenSet_LeavesOnlyTheNewValues()
    {
        var session = new BatonSession("s", Committed);
        session.Clear();
        session.Set("z", [9]);

        Assert.Equal(["z"], session.Keys);
        Assert.Equal(["z"], session.ApplyTo(Committed).Keys);
    }

    [Fact]
    public void Set_CopiesTheValue_SoLaterChangesToTheArrayDoNotLeakIn()
    {
        var session = new BatonSession("s", Committed);
        byte[] value = [1, 2, 3];
        session.Set("v", value);
        value[0] = 99;

        Assert.True(session.TryGetValue("v", out var stored));
        Assert.Equal(1, stored[0]);
    }

    [Fact]
    public void Committed_StartsAFreshChangeSet()
    {
        var session = new BatonSession("s", Committed);
        session.Set("c", [3]);
        var data = session.ApplyTo(Committed);

        session.Committed(data);

        Assert.False(session.IsDirty);
        Assert.True(session.TryGetValue("c", out _));
    }
}
