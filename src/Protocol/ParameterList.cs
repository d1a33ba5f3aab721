namespace Baton.Protocol;

/// <summary>
/// The header value syntax every protocol message uses: <c>key=value</c> pairs joined by <c>"; "</c>.
/// Keys are lowercase ASCII letters; values are visible ASCII without <c>;</c>, <c>=</c> or spaces.
/// Parsing is strict: an unknown, missing or repeated key makes the message malformed.
/// </summary>
internal static class ParameterList
{
    /// <summary>Longest header value any protocol message needs; anything longer is malformed.</summary>
    public const int MaxLength = 1024;

    /// <summary>
    /// Reads a message's fields into <paramref name="values"/> (in the order of <paramref name="keys"/>,
    /// whose first is <c>v</c>, which must be <paramref name="version"/>): Valid, Missing, Malformed or
    /// UnsupportedVersion. Field values are not checked further here, nor the MAC.
    /// </summary>
    public static ProtocolVerdict Read(string? header, ReadOnlySpan<string> keys, Span<string?> values, string version = "1")
    {
        if (string.IsNullOrEmpty(header))
        {
            return ProtocolVerdict.Missing;
        }

        return TryParse(header, keys, values) ? Mac.CheckVersion(values[0], version) : ProtocolVerdict.Malformed;
    }

    public static bool TryParse(string? text, ReadOnlySpan<string> keys, Span<string?> values)
    {
        if (string.IsNullOrEmpty(text) || text.Length > MaxLength)
        {
            return false;
        }

        values.Clear();
        var found = 0;
        foreach (var range in text.AsSpan().Split(';'))
        {
            var pair = text.AsSpan()[range].Trim(' ');
            var eq = pair.IndexOf('=');
            if (eq <= 0)
            {
                return false;
            }

            var index = IndexOf(keys, pair[..eq]);
            var value = pair[(eq + 1)..];
            if (index < 0 || values[index] is not null || value.IsEmpty || !IsValue(value))
            {
                return false;
            }

            values[index] = value.ToString();
            found++;
        }

        return found == keys.Length;
    }

    public static bool TryParseLong(string? text, long min, long max, out long value)
        => long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out value)
           && value >= min && value <= max;

    private static int IndexOf(ReadOnlySpan<string> keys, ReadOnlySpan<char> key)
    {
        for (var i = 0; i < keys.Length; i++)
        {
            if (key.SequenceEqual(keys[i]))
            {
                return i;
            }
        }

        return -1;
    }

    private static bool IsValue(ReadOnlySpan<char> value)
    {
        foreach (var c in value)
        {
            if (c is <= ' ' or > '~' or ';' or '=')
            {
                return false;
            }
        }

        return true;
    }
}
