using System.Buffers;
using System.Text;

namespace Baton.Protocol;

/// <summary>
/// The keyed state format (the .NET library's, and the one deltas apply to), and its deltas. See docs/protocol.md.
/// </summary>
/// <remarks>
/// <para>A <b>state</b> is empty for an empty session; otherwise one format byte (<see cref="StateFormat"/>, 1), then for
/// each key in ordinal order: key length, UTF-8 key, value length, value — lengths as unsigned LEB128.</para>
/// <para>A <b>delta</b> is the keys set and removed since a version: one format byte (<see cref="DeltaFormat"/>, 2),
/// then at least one entry, each key once, in ordinal order: an operation byte (1 set, 0 remove), key length, UTF-8
/// key, and for a set the value length and value. Applied to a state it gives the state with each set key holding
/// its value and each removed key gone (removing a key the state lacks is no error).</para>
/// </remarks>
public static class KeyedState
{
    /// <summary>The first byte of a non-empty state.</summary>
    public const byte StateFormat = 1;

    /// <summary>The first byte of a delta.</summary>
    public const byte DeltaFormat = 2;

    private const byte SetOperation = 1;
    private const byte RemoveOperation = 0;

    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    /// <summary>The state holding <paramref name="values"/>.</summary>
    public static byte[] Encode(IReadOnlyDictionary<string, byte[]> values)
    {
        if (values.Count == 0)
        {
            // An empty session is an empty state: what the gateway keeps for a cleared session.
            return [];
        }

        var buffer = new ArrayBufferWriter<byte>(64);
        WriteByte(buffer, StateFormat);
        foreach (var key in values.Keys.Order(StringComparer.Ordinal))
        {
            WriteEntry(buffer, key, values[key]);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads a state; false for anything but a well-formed one (bad lengths, keys not UTF-8, a key twice).</summary>
    public static bool TryDecode(ReadOnlySpan<byte> state, out Dictionary<string, byte[]> values)
    {
        values = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        if (state.IsEmpty)
        {
            return true;
        }

        if (state[0] != StateFormat)
        {
            return false;
        }

        var rest = state[1..];
        while (!rest.IsEmpty)
        {
            if (!TryReadKey(ref rest, out var key) || !TryReadValue(ref rest, out var value) || !values.TryAdd(key, value.ToArray()))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>How many bytes <see cref="Encode"/> makes of <paramref name="values"/>, without making them.</summary>
    public static int SizeOf(IReadOnlyDictionary<string, byte[]> values)
    {
        if (values.Count == 0)
        {
            return 0;
        }

        long size = 1;
        foreach (var (key, value) in values)
        {
            size += EntrySize(key, value.Length);
        }

        return (int)Math.Min(int.MaxValue, size);
    }

    /// <summary>How many bytes <paramref name="key"/> holding a value of <paramref name="valueLength"/> bytes takes in a state.</summary>
    public static int EntrySize(string key, int valueLength)
    {
        var keyLength = Encoding.UTF8.GetByteCount(key);
        return LengthSize(keyLength) + keyLength + LengthSize(valueLength) + valueLength;
    }

    /// <summary>How many bytes <see cref="EncodeDelta"/> makes of <paramref name="changes"/>, without making them.</summary>
    public static int DeltaSize(IEnumerable<KeyValuePair<string, byte[]?>> changes)
    {
        long size = 1;
        foreach (var (key, value) in changes)
        {
            size += 1 + (value is null ? EntrySize(key, 0) - LengthSize(0) : EntrySize(key, value.Length));
        }

        return (int)Math.Min(int.MaxValue, size);
    }

    /// <summary>
    /// The delta setting or removing each of <paramref name="changes"/> (a null value removes its key); null when there
    /// are none (a delta holds at least one entry), or when a key is not well-formed UTF-16 (a lone surrogate has no
    /// UTF-8 of its own, so the key would not read back as itself, nor in its order): such a change goes whole.
    /// </summary>
    public static byte[]? EncodeDelta(IEnumerable<KeyValuePair<string, byte[]?>> changes)
    {
        var buffer = new ArrayBufferWriter<byte>(64);
        WriteByte(buffer, DeltaFormat);
        foreach (var (key, value) in changes.OrderBy(change => change.Key, StringComparer.Ordinal))
        {
            if (!IsWellFormed(key))
            {
                return null;
            }

            if (value is null)
            {
                WriteByte(buffer, RemoveOperation);
                WriteKey(buffer, key);
            }
            else
            {
                WriteByte(buffer, SetOperation);
                WriteEntry(buffer, key, value);
            }
        }

        return buffer.WrittenCount == 1 ? null : buffer.WrittenSpan.ToArray();
    }

    /// <summary>True for a well-formed delta: its format byte, at least one entry, each key once, in ordinal order.</summary>
    public static bool IsValidDelta(ReadOnlySpan<byte> delta) => TryReadDelta(delta, null);

    /// <summary>
    /// <paramref name="state"/> with <paramref name="delta"/> applied; false (and no result) when the state is not a
    /// keyed state or the delta is not well-formed.
    /// </summary>
    public static bool TryApply(ReadOnlySpan<byte> state, byte[] delta, out byte[] result) => TryApply(state, [delta], out result);

    /// <summary>
    /// <paramref name="state"/> with each of <paramref name="deltas"/> applied in turn (decoded and encoded once, however
    /// many); false (and no result) when the state is not a keyed state or a delta is not well-formed.
    /// </summary>
    public static bool TryApply(ReadOnlySpan<byte> state, IEnumerable<byte[]> deltas, out byte[] result)
    {
        result = [];
        if (!TryDecode(state, out var values))
        {
            return false;
        }

        foreach (var delta in deltas)
        {
            if (!TryReadDelta(delta, values))
            {
                return false;
            }
        }

        result = Encode(values);
        return true;
    }

    // Reads (and, with values, applies) a delta.
    private static bool TryReadDelta(ReadOnlySpan<byte> delta, Dictionary<string, byte[]>? values)
    {
        if (delta.Length < 2 || delta[0] != DeltaFormat)
        {
            return false;
        }

        var rest = delta[1..];
        string? previous = null;
        while (!rest.IsEmpty)
        {
            var operation = rest[0];
            rest = rest[1..];
            if (operation is not (SetOperation or RemoveOperation)
                || !TryReadKey(ref rest, out var key)
                || (previous is not null && string.CompareOrdinal(previous, key) >= 0))
            {
                return false;
            }

            previous = key;
            if (operation == RemoveOperation)
            {
                values?.Remove(key);
                continue;
            }

            if (!TryReadValue(ref rest, out var value))
            {
                return false;
            }

            if (values is not null)
            {
                values[key] = value.ToArray();
            }
        }

        return true;
    }

    private static bool IsWellFormed(string key)
    {
        try
        {
            StrictUtf8.GetByteCount(key);
            return true;
        }
        catch (EncoderFallbackException)
        {
            return false;
        }
    }

    private static bool TryReadKey(ref ReadOnlySpan<byte> data, out string key)
    {
        key = string.Empty;
        if (!TryReadLength(ref data, out var length) || length > data.Length)
        {
            return false;
        }

        try
        {
            key = StrictUtf8.GetString(data[..length]);
        }
        catch (DecoderFallbackException)
        {
            return false;
        }

        data = data[length..];
        return true;
    }

    private static bool TryReadValue(ref ReadOnlySpan<byte> data, out ReadOnlySpan<byte> value)
    {
        value = default;
        if (!TryReadLength(ref data, out var length) || length > data.Length)
        {
            return false;
        }

        value = data[..length];
        data = data[length..];
        return true;
    }

    private static void WriteEntry(ArrayBufferWriter<byte> buffer, string key, byte[] value)
    {
        WriteKey(buffer, key);
        WriteLength(buffer, value.Length);
        buffer.Write(value);
    }

    private static void WriteKey(ArrayBufferWriter<byte> buffer, string key)
    {
        var keyBytes = Encoding.UTF8.GetBytes(key);
        WriteLength(buffer, keyBytes.Length);
        buffer.Write(keyBytes);
    }

    private static void WriteByte(ArrayBufferWriter<byte> buffer, byte value)
    {
        buffer.GetSpan(1)[0] = value;
        buffer.Advance(1);
    }

    private static int LengthSize(int length)
    {
        var size = 1;
        for (var value = (uint)length; value >= 0x80; value >>= 7)
        {
            size++;
        }

        return size;
    }

    private static void WriteLength(ArrayBufferWriter<byte> buffer, int length)
    {
        var value = (uint)length;
        while (value >= 0x80)
        {
            WriteByte(buffer, (byte)(value | 0x80));
            value >>= 7;
        }

        WriteByte(buffer, (byte)value);
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
