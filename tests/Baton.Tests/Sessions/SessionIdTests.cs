using Baton.Gateway.Sessions;

namespace Baton.Tests.Sessions;

[Trait("Category", "Unit")]
public sealed class SessionIdTests
{
    [Fact]
    public void New_Is22CharactersOfBase64Url_AndUnique()
    {
        var ids = Enumerable.Range(0, 10_000).Select(_ => SessionId.New().Value).ToList();

        Assert.All(ids, id => Assert.Equal(SessionId.EncodedLength, id.Length));
        Assert.All(ids, id => Assert.Matches("^[A-Za-z0-9_-]{22}$", id));
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void TryParse_RoundTripsANewId()
    {
        var id = SessionId.New();

        Assert.True(SessionId.TryParse(id.Value, out var parsed));
        Assert.Equal(id, parsed);
    }

    [Theory]
    [InlineData("")]
    [InlineData("short")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("AAAAAAAAAAAAAAAAAAAA+A")]
    [InlineData("AAAAAAAAAAAAAAAAAAAA/A")]
    [InlineData("AAAAAAAAAAAAAAAAAAAA=A")]
    [InlineData("AAAAAAAAAAAAAAAAAAAA A")]
    public void TryParse_RejectsWhatIsNotAnId(string text)
    {
        Assert.False(SessionId.TryParse(text, out _));
    }

    [Fact]
    public void TryParse_RejectsANonCanonicalSpellingOfAValidId()
    {
        // 16 zero bytes are "AAAAAAAAAAAAAAAAAAAAAA"; "...AB" decodes to the same bytes through the unused bits.
        Assert.True(SessionId.TryParse("AAAAAAAAAAAAAAAAAAAAAA", out _));
        Assert.False(SessionId.TryParse("AAAAAAAAAAAAAAAAAAAAAB", out _));
    }

    [Fact]
    public void ToString_GivesAHash_NeverTheId()
    {
        var id = SessionId.New();

        Assert.DoesNotContain(id.Value, id.ToString(), StringComparison.Ordinal);
        Assert.Equal("sid#" + id.Hash, id.ToString());
        Assert.Equal(12, id.Hash.Length);
    }
}
