using System.Buffers;
using System.Text;
using Baton.Protocol;

namespace Baton.Gateway.Store;

/// <summary>One delta a tier keeps after a session's last whole state: the version it made, the delta and its digest.</summary>
internal sealed record DeltaLink(long Version, byte[] Delta, string Digest);

/// <summary>
/// How a tier turns a whole state and the deltas stored after it into the session's state, and how a tier that keeps
/// the chain in one value (Redis) lays its links end to end.
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

    /// <summary>One link as <see cref="ReadLinks"/> reads it back: version and length as unsigned LEB128, the 43-character digest, the delta.</summary>
    public static byte[] Frame(long version, byte[] delta, string digest)
    {
        var buffer = new ArrayBufferWriter<byte>(delta.Length + 64);
        WriteNumber(buffer, (ulong)version);
        Encoding.ASCII.GetBytes(digest, buffer.GetSpan(digest.Length));
        buffer.Advance(digest.Length);
        WriteNumber(buffer, (ulong)delta.Length);
        buffer.Write(delta);
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>The links laid end to end by <see cref="Frame"/>; null when the bytes are not such links.</summary>
    public static List<DeltaLink>? ReadLinks(ReadOnlySpan<byte> frames)
    {
        var links = new List<DeltaLink>();
        while (!frames.IsEmpty)
        {
            if (!TryReadNumber(ref frames, out var version) || frames.Length < ProtocolConstants.DigestLength)
            {
                return null;
            }

            var digest = Encoding.ASCII.GetString(frames[..ProtocolConstants.DigestLength]);
            frames = frames[ProtocolConstants.DigestLength..];
            if (!TryReadNumber(ref frames, out var length) || length > (ulong)frames.Length || version > long.MaxValue)
            {
                return null;
            }

            links.Add(new DeltaLink((long)version, frames[..(int)length].ToArray(), digest));
            frames = frames[(int)length..];
        }

        return links;
    }

    private static void WriteNumber(ArrayBufferWriter<byte> buffer, ulong value)
    {
        while (value >= 0x80)
        {
            buffer.GetSpan(1)[0] = (byte)(value | 0x80);
            buffer.Advance(1);
            value >>= 7;
        }

        buffer.GetSpan(1)[0] = (byte)value;
        buffer.Advance(1);
    }

    private static bool TryReadNumber(ref ReadOnlySpan<byte> data, out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (data.IsEmpty)
            {
                return false;
            }

            var b = data[0];
            data = data[1..];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return true;
            }
        }

        return false;
    }
}
