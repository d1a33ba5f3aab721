using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Baton.Protocol;

/// <summary>HMAC-SHA256 over a message's canonical text, as 43 base64url characters.</summary>
internal static class Mac
{
    public static string Compute(byte[] key, string canonical)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        Hashing.Hmac(key, Encoding.UTF8.GetBytes(canonical), mac);
        return Base64Url.EncodeToString(mac);
    }

    public static bool Verify(byte[] key, string canonical, string presented)
    {
        Span<byte> given = stackalloc byte[HMACSHA256.HashSizeInBytes];
        if (!Ids.TryDecodeCanonical(presented, given))
        {
            return false;
        }

        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        Hashing.Hmac(key, Encoding.UTF8.GetBytes(canonical), expected);
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }

    /// <summary>Reads the version field: the expected one, another number, or garbage.</summary>
    public static ProtocolVerdict CheckVersion(string? version, string expected)
        => version == expected ? ProtocolVerdict.Valid
            : ParameterList.TryParseLong(version, 0, long.MaxValue, out _) ? ProtocolVerdict.UnsupportedVersion
            : ProtocolVerdict.Malformed;
}
