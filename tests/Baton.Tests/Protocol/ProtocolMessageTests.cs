using Baton.Protocol;

namespace Baton.Tests.Protocol;

[Trait("Category", "Unit")]
public sealed class ProtocolMessageTests
{
    private static readonly ProtocolKeys Keys = new("protocol-test-secret-0123456789abcdef0123");
    private static readonly ProtocolKeys OtherKeys = new("another-test-secret-0123456789abcdef01234");

    [Theory]
    [InlineData("Baton-Session", true)]
    [InlineData("baton-checkpoint", true)]
    [InlineData("BATON_RESTORE", true)]
    [InlineData("baton_x", true)]
    [InlineData("Baton-", true)]
    [InlineData("Batonx", false)]
    [InlineData("X-Baton-Session", false)]
    [InlineData("Bat", false)]
    public void IsProtocolHeader_MatchesEverySpellingOfThePrefixOnly(string name, bool expected)
    {
        Assert.Equal(expected, ProtocolConstants.IsProtocolHeader(name));
    }

    [Fact]
    public void SessionGrant_RoundTrips_AndFailsWithAnotherKey()
    {
        var grant = new SessionGrant(Ids.New(), 12, 0, 1_200_000, 1 << 20, 1_700_000_000_000);
        var header = grant.Format(Keys);

        Assert.Equal(ProtocolVerdict.Valid, SessionGrant.TryParse(header, Keys, out var parsed));
        Assert.Equal(grant, parsed);
        Assert.Equal(ProtocolVerdict.BadSignature, SessionGrant.TryParse(header, OtherKeys, out _));
    }

    [Theory]
    [InlineData(7L, "v=2; ")]
    [InlineData(null, "v=1; ")]
    public void CheckpointDescriptor_RoundTrips_InVersion2WithAnEpoch_AndVersion1Without(long? epoch, string starts)
    {
        var checkpoint = new CheckpointDescriptor(Ids.New(), 3, epoch, 1024, Ids.Sha256(new byte[1024]), Ids.New());
        var header = checkpoint.Format(Keys);

        Assert.StartsWith(starts, header, StringComparison.Ordinal);
        Assert.Equal(ProtocolVerdict.Valid, CheckpointDescriptor.TryParse(header, Keys, out var parsed));
        Assert.Equal(checkpoint, parsed);
    }

    [Theory]
    [InlineData(SessionActionKind.Rotate, "action=rotate")]
    [InlineData(SessionActionKind.End, "action=end")]
    public void SessionAction_RoundTrips_AndNeitherItsKindNorItsSessionCanBeChanged(SessionActionKind kind, string field)
    {
        var action = new SessionAction(Ids.New(), kind);
        var header = action.Format(Keys);

        Assert.Contains(field, header, StringComparison.Ordinal);
        Assert.Equal(ProtocolVerdict.Valid, SessionAction.TryParse(header, Keys, out var parsed));
        Assert.Equal(action, parsed);
        var other = kind == SessionActionKind.Rotate ? "action=end" : "action=rotate";
        Assert.Equal(ProtocolVerdict.BadSignature, SessionAction.TryParse(header.Replace(field, other, StringComparison.Ordinal), Keys, out _));
        Assert.Equal(ProtocolVerdict.BadSignature, SessionAction.TryParse(header.Replace(action.SessionId, Ids.New(), StringComparison.Ordinal), Keys, out _));
        Assert.Equal(ProtocolVerdict.BadSignature, SessionAction.TryParse(header, OtherKeys, out _));
        Assert.Equal(ProtocolVerdict.Malformed, SessionAction.TryParse(header.Replace(field, "action=steal", StringComparison.Ordinal), Keys, out _));
    }

    [Fact]
    public void ACheckpointsEpoch_IsSigned_SoNoneCanBeAlteredOrAddedToAVersion1Message()
    {
        var checkpoint = new CheckpointDescriptor(Ids.New(), 3, 4, 0, Ids.Sha256([]), Ids.New());
        var header = checkpoint.Format(Keys);
        var version1 = (checkpoint with { Epoch = null }).Format(Keys);

        Assert.Equal(ProtocolVerdict.BadSignature, CheckpointDescriptor.TryParse(header.Replace("epoch=4", "epoch=5", StringComparison.Ordinal), Keys, out _));
        Assert.Equal(ProtocolVerdict.BadSignature, CheckpointDescriptor.TryParse(version1.Replace("v=1; ", "v=2; ", StringComparison.Ordinal).Replace("; len=", "; epoch=9; len=", StringComparison.Ordinal), Keys, out _));
        Assert.Equal(ProtocolVerdict.UnsupportedVersion, CheckpointDescriptor.TryParse(header.Replace("v=2; ", "v=4; ", StringComparison.Ordinal), Keys, out _));
    }

    [Fact]
    public void ADeltaCheckpoint_RoundTrips_InVersion3_WithItsBaseAndSizeSigned()
    {
        var checkpoint = new CheckpointDescriptor(Ids.New(), 9, 2, 12, Ids.Sha256(new byte[12]), Ids.New(), Base: 7, StateSize: 65_600);
        var header = checkpoint.Format(Keys);

        Assert.StartsWith("v=3; ", header, StringComparison.Ordinal);
        Assert.Equal(ProtocolVerdict.Valid, CheckpointDescriptor.TryParse(header, Keys, out var parsed));
        Assert.Equal(checkpoint, parsed);
        Assert.True(parsed!.IsDelta);
        Assert.Equal(65_600, parsed.WholeSize);
        Assert.Equal(ProtocolVerdict.BadSignature, CheckpointDescriptor.TryParse(header.Replace("base=7", "base=8", StringComparison.Ordinal), Keys, out _));
        Assert.Equal(ProtocolVerdict.BadSignature, CheckpointDescriptor.TryParse(header.Replace("size=65600", "size=65601", StringComparison.Ordinal), Keys, out _));

        // A whole state's message read as a delta's, or a delta's as a whole state's, never checks out.
        Assert.NotEqual(ProtocolVerdict.Valid, CheckpointDescriptor.TryParse(header.Replace("v=3; ", "v=2; ", StringComparison.Ordinal), Keys, out _));
    }

    [Theory]
    [InlineData(0L, 5L)]
    [InlineData(5L, 5L)]
    [InlineData(6L, 5L)]
    public void ADeltaCheckpoint_CountsFromAStoredVersionBelowItsOwn(long deltaBase, long version)
    {
        var checkpoint = new CheckpointDescriptor(Ids.New(), version, 0, 3, Ids.Sha256([2, 1, 0]), Ids.New(), Base: deltaBase, StateSize: 10);

        Assert.Equal(ProtocolVerdict.Malformed, CheckpointDescriptor.TryParse(checkpoint.Format(Keys), Keys, out _));
    }

    [Fact]
    public void AWellFormedMessageSignedWithAnotherKindsKey_IsABadSignature_ForEveryKind()
    {
        var grant = new SessionGrant(Ids.New(), 1, 0, 1000, 1024, 1);
        var checkpoint = new CheckpointDescriptor(Ids.New(), 1, 0, 0, Ids.Sha256([]), Ids.New());
        var restore = new RestoreDescriptor(Ids.New(), 1, 0, 0, Ids.Sha256([]), Ids.New(), 1, Ids.New());
        var action = new SessionAction(Ids.New(), SessionActionKind.Rotate);
        (string Header, string Canonical, byte[] Key, Func<string, ProtocolVerdict> Parse)[] kinds =
        [
            (grant.Format(Keys), grant.Canonical(), Keys.Grant, h => SessionGrant.TryParse(h, Keys, out _)),
            (checkpoint.Format(Keys), checkpoint.Canonical(), Keys.Checkpoint, h => CheckpointDescriptor.TryParse(h, Keys, out _)),
            (restore.Format(Keys), restore.Canonical(), Keys.Restore, h => RestoreDescriptor.TryParse(h, Keys, out _)),
            (action.Format(Keys), action.Canonical(), Keys.Action, h => SessionAction.TryParse(h, Keys, out _)),
        ];
        byte[][] keys = [Keys.Grant, Keys.Checkpoint, Keys.Restore, Keys.Action, Keys.Cookie];

        foreach (var (header, canonical, own, parse) in kinds)
        {
            var unsigned = header[..(header.LastIndexOf("mac=", StringComparison.Ordinal) + "mac=".Length)];
            Assert.Equal(ProtocolVerdict.Valid, parse(unsigned + Mac.Compute(own, canonical)));
            foreach (var other in keys.Where(k => !ReferenceEquals(k, own)))
            {
                Assert.Equal(ProtocolVerdict.BadSignature, parse(unsigned + Mac.Compute(other, canonical)));
            }
        }
    }

    [Theory]
    [InlineData("ver=12", "ver=13")]
    [InlineData("epoch=0", "epoch=1")]
    [InlineData("ttl=1200000", "ttl=9999999")]
    [InlineData("max=1048576", "max=99999999")]
    [InlineData("ts=1700000000000", "ts=1700000000001")]
    public void AnyAlteredField_BreaksTheSignature(string from, string to)
    {
        var header = new SessionGrant(Ids.New(), 12, 0, 1_200_000, 1 << 20, 1_700_000_000_000).Format(Keys);

        Assert.Equal(ProtocolVerdict.BadSignature, SessionGrant.TryParse(header.Replace(from, to, StringComparison.Ordinal), Keys, out _));
    }

    [Theory]
    [InlineData(null, nameof(ProtocolVerdict.Missing))]
    [InlineData("", nameof(ProtocolVerdict.Missing))]
    [InlineData("garbage", nameof(ProtocolVerdict.Malformed))]
    [InlineData("v=2; sid=AAAAAAAAAAAAAAAAAAAAAA; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nameof(ProtocolVerdict.UnsupportedVersion))]
    [InlineData("v=1; sid=AAAAAAAAAAAAAAAAAAAAAA; ver=1; epoch=0; ttl=1; max=1; ts=1", nameof(ProtocolVerdict.Malformed))]
    [InlineData("v=1; sid=AAAAAAAAAAAAAAAAAAAAAA; ver=1; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nameof(ProtocolVerdict.Malformed))]
    [InlineData("v=1; sid=AAAAAAAAAAAAAAAAAAAAAA; ver=-1; epoch=0; ttl=1; max=1; ts=1; mac=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nameof(ProtocolVerdict.Malformed))]
    [InlineData("v=1; sid=AAAAAAAAAAAAAAAAAAAAA!; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nameof(ProtocolVerdict.Malformed))]
    [InlineData("v=1; sid=AAAAAAAAAAAAAAAAAAAAAA; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; x=1", nameof(ProtocolVerdict.Malformed))]
    [InlineData("v=1; sid=AAAAAAAAAAAAAAAAAAAAAA; ver=1; epoch=0; ttl=1; max=1; ts=1; mac=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nameof(ProtocolVerdict.BadSignature))]
    public void SessionGrant_TryParse_ClassifiesBadInput_WithoutThrowing(string? header, string expected)
    {
        Assert.Equal(expected, SessionGrant.TryParse(header, Keys, out var grant).ToString());
        Assert.Null(grant);
    }

    [Fact]
    public void AnOverlongHeader_IsMalformed()
    {
        Assert.Equal(ProtocolVerdict.Malformed, SessionGrant.TryParse("v=1; " + new string('x', 5000), Keys, out _));
    }
}
