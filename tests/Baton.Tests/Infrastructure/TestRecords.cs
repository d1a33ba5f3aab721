using Baton.Gateway.Store;

namespace Baton.Tests.Infrastructure;

/// <summary>Session records for tests that write the tiers directly.</summary>
internal static class TestRecords
{
    /// <summary>A checkpoint of <paramref name="state"/> at <paramref name="version"/>, made in <paramref name="epoch"/> by <paramref name="owner"/>, used at <paramref name="at"/>.</summary>
    public static SessionRecord Checkpoint(string id, long version, byte[] state, string? owner, long at, long epoch = 0)
        => new(id, owner, epoch, version, state, Baton.Protocol.Ids.Sha256(state), at, at + (long)TimeSpan.FromHours(1).TotalMilliseconds);
}
