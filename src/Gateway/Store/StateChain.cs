using System.Text;
using Baton.Protocol;

namespace Baton.Gateway.Store;

/// <summary>One delta a tier keeps after a session's last whole state, with its digest.</summary>
internal sealed record DeltaLink(byte[] Delta, string Digest);

/// <summary>
/// How a tier turns a whole state and the deltas stored after it into the session's state, and how a tier that keeps
/// the chain in values of its own (Redis, a field per link) lays each out.
/// </summary>
internal static class StateChain
{
    /// <summary>
    /// The digest a record carries when its state cannot be trusted (a part that does not match its digest, a delta that
    /// does not apply): never the SHA-256 of the state returned with it, so every reader treats the record as damaged.
    /// </summary>
    public static readonly string DamagedDigest = Ids.Sha256("baton: a damaged chain of deltas"u8.ToArray());

    /// <summary>
    /// The state at the last link: <paramref name="snapshot"/> with each link applied in turn, and its digest. When the
    /// snapshot or a link does not match its digest, or a link does not apply, the snapshot with
    /// <see cref="DamagedDigest"/>. Without links, the snapshot and its own stored digest as they are.
    /// </summary>
    public static (byte[] State, string Digest) Fold(byte[] snapshot, string digest, IReadOnlyList<DeltaLink> links)
    {
        if (links.Count == 0)
        {
            return (snapshot, digest);
        }

        if (Ids.Sha256(snapshot) != digest)
        {
            return (snapshot, DamagedDigest);
        }

        if (links.Any(link => Ids.Sha256(link.Delta) != link.Digest) || !KeyedState.TryApply(snapshot, links.Select(link => link.Delta), out var state))
        {
            return (snapshot, DamagedDigest);
        }

        return (state, Ids.Sha256(state));
    }

    /// <summary>One link as <see cref="ReadLink"/> reads it back: the 43-character digest, then the delta.</summary>
    public static byte[] Frame(byte[] delta, string digest) => [.. Encoding.ASCII.GetBytes(digest), .. delta];

    /// <summary>A link laid out by <see cref="Frame"/>; null when the bytes are too short to be one.</summary>
    public static DeltaLink? ReadLink(ReadOnlySpan<byte> frame)
        => frame.Length < ProtocolConstants.DigestLength
            ? null
            : new DeltaLink(frame[ProtocolConstants.DigestLength..].ToArray(), Encoding.ASCII.GetString(frame[..ProtocolConstants.DigestLength]));
}
