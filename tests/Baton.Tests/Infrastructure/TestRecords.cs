using Baton.Gateway.Store;

namespace Baton.Tests.Infrastructure;

/// <summary>Session records for tests that write the tiers directly.</summary>
internal static class TestRecords
{
    /// <summary>
    /// Every tier's check-and-set, in order, on a session a move put in epoch 3: the checkpoint (version, epoch) and
    /// what the tier answers. Ends at version 2 in epoch 4.
    /// </summary>
    public static IReadOnlyList<(long Version, long Epoch, SaveOutcome Expected)> CheckAndSetAfterAMoveToEpochThree { get; } =
    [
        (1, 2, SaveOutcome.Fenced),
        (1, 3, SaveOutcome.Stored),
        (2, 4, SaveOutcome.Stored),
        (3, 3, SaveOutcome.Fenced),
        (2, 4, SaveOutcome.Stale),
        (1, 4, SaveOutcome.Stale),
        (2, 5, SaveOutcome.Diverged),
    ];

    /// <summary>A checkpoint of <paramref name="state"/> at <paramref name="version"/>, made in <paramref name="epoch"/> by <paramref name="owner"/>, used at <paramref name="at"/>.</summary>
    public static SessionRecord Checkpoint(string id, long version, byte[] state, string? owner, long at, long epoch = 0)
        => new(id, owner, epoch, version, state, Baton.Protocol.Ids.Sha256(state), at, at + (long)TimeSpan.FromHours(1).TotalMilliseconds);
}
