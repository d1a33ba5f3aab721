using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;

namespace Baton.Protocol;

/// <summary>
/// Random ids (session ids, incarnation ids, nonces) and digests, all base64url without padding, each in
/// its one canonical spelling. Parsing never throws: these arrive from the network.
/// </summary>
public static class Ids
{
    /// <summary>Bytes in an id (22 base64url characters).</summary>
    public const int IdBytes = 16;
    /// <summary>Bytes in a digest or MAC (43 base64url characters).</summary>
    public const int DigestBytes = 32;

    /// <summary>16 bytes from the OS CSPRNG as 22 base64url characters.</summary>
    public static string New()
    {
        Span<byte> bytes = stackalloc byte[IdBytes];
        RandomNumberGenerator.Fill(bytes);
        return Base64Url.EncodeToString(bytes);
    }

    /// <summary>True for exactly the canonical 22-character encoding of 16 bytes.</summary>
    public static bool IsValidId(ReadOnlySpan<char> text)
    {
        Span<byte> bytes = stackalloc byte[IdBytes];
        return TryDecodeCanonical(text, bytes);
    }

    /// <summary>True for exactly the canonical 43-character encoding of 32 bytes (a MAC or SHA-256).</summary>
    public static bool IsValidDigest(ReadOnlySpan<char> text)
    {
        Span<byte> bytes = stackalloc byte[DigestBytes];
        return TryDecodeCanonical(text, bytes);
    }

    /// <summary>A short, stable hash of an id for logs and traces (12 hex digits): never log the id itself.</summary>
    public static string LogHash(string id)
    {
        Span<byte> digest = stackalloc byte[DigestBytes];
        Hashing.Sha256(System.Text.Encoding.UTF8.GetBytes(id), digest);
        return Convert.ToHexStringLower(digest[..6]);
    }

    /// <summary>SHA-256 of the data as 43 base64url characters.</summary>
    public static string Sha256(ReadOnlySpan<byte> data)
    {
        Span<byte> digest = stackalloc byte[DigestBytes];
        Hashing.Sha256(data, digest);
        return Base64Url.EncodeToString(digest);
    }

    /// <summary>
    /// Decodes base64url text that encodes exactly <paramref name="destination"/>'s length, in its one
    /// canonical spelling (a final character's unused bits must be zero).
    /// </summary>
    public static bool TryDecodeCanonical(ReadOnlySpan<char> text, Span<byte> destination)
    {
        if (text.Length != Base64Url.GetEncodedLength(destination.Length))
        {
            return false;
        }

        var status = Base64Url.DecodeFromChars(text, destination, out var consumed, out var written);
        if (status != OperationStatus.Done || consumed != text.Length || written != destination.Length)
        {
            return false;
        }

        Span<char> canonical = stackalloc char[text.Length];
        return Base64Url.TryEncodeToChars(destination, canonical, out var encoded) && canonical[..encoded].SequenceEqual(text);
    }
}
