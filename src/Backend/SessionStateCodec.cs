using System.Buffers;
using System.Text;

namespace Baton.Backend;

/// <summary>
/// How this library serializes an <c>ISession</c>'s contents into the opaque state the gateway stores:
/// nothing for an empty session; otherwise one format byte (1), then for each key in ordinal order: key length, UTF-8 key, value length, value,
/// lengths as unsigned LEB128. The gateway never looks inside.
/// </summary>
internal static class SessionStateCodec
{
    private const byte Format = 1;

    public static byte[] Encode(IReadOnlyDictionary<string, byte[]> values)
    {
        if (values.Count == 0)
        {
            // An empty session is an empty state: what the gateway keeps for a cleared session.
            return [];
        }

        var buffer = new ArrayBufferWriter<byte>(64);
        buffer.GetSpan(1)[0] = Format;
        buffer.Advance(1);
        foreach (var key in values.Keys.Order(StringComparer.Ordinal))
        {
            var keyBytes = Encoding.UTF8.GetBytes(key);
            WriteLength(buffer, keyBytes.Length);
            buffer.Write(keyBytes);
            var value = values[key];
            WriteLength(buffer, value.Length);
            buffer.Write(value);
        }

        return buffer.WrittenSpan.ToArray();
    }

    public static bool TryDecode(ReadOnlySpan<byte> state, out Dictionary<string, byte[]> values)
    {
        values = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (state.IsEmpty)
        {
            return true;
        }

        if (state[0] != Format)
        {
            return false;
        }

        var rest = state[1..];
        while (!rest.IsEmpty)
        {
            if (!TryReadLength(ref rest, out var keyLength) || keyLength > rest.Length)
            {
                return false;
            }

            string key;
            try
            {
                key = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(rest[..keyLength]);
            }
            catch (DecoderFallbackException)
            {
                return false;
            }

            rest = rest[keyLength..];
            if (!TryReadLength(ref rest, out var valueLength) || valueLength > rest.Length || !values.TryAdd(key, rest[..valueLength].ToArray()))
            {
                return false;
            }

            rest = rest[valueLength..];
        }

        return true;
    }

    private static void WriteLength(ArrayBufferWriter<byte> buffer, int length)
    {
        var value = (uint)length;
        while (value >= 0x80)
        {
            buffer.GetSpan(1)[0] = (byte)(value | 0x80);
            buffer.Advance(1);
            value >>= 7;
        }

        buffer.GetSpan(1)[0] = (byte)value;
        buffer.Advance(1);
    }

    private static bool TryReadLength(ref ReadOnlySpan<byte> data, out int length)
    {
        length = 0;
        uint value = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            if (data.IsEmpty)
            {
                return false;
            }

            var b = data[0];
            data = data[1..];
            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                if (value > int.MaxValue)
                {
                    return false;
                }

                length = (int)value;
                return true;
            }
        }

        return false;
    }
}
