using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace Baton.Gateway.Sessions;

/// <summary>
/// Baton's own session id: 128 random bits in canonical base64url without padding (22 characters).
/// <see cref="ToString"/> gives a short hash, never the id, so an id cannot leak into logs by accident.
/// </summary>
internal readonly record struct SessionId
{
    public const int ByteLength = 16;
    public const int EncodedLength = 22;

    private SessionId(string value) => Value = value;

    /// <summary>The id as it travels in the cookie.</summary>
    public string Value { get; }

    public static SessionId New()
    {
        Span<byte> bytes = stackalloc byte[ByteLength];
        RandomNumberGenerator.Fill(bytes);
        return new SessionId(Base64Url.EncodeToString(bytes));
    }

    /// <summary>Accepts exactly the canonical encoding of 16 bytes, nothing else.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out SessionId id)
    {
        id = default;
        if (text.Length != EncodedLength)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[ByteLength];
        if (!TryDecodeCanonical(text, bytes))
        {
            return false;
        }

        id = new SessionId(text.ToString());
        return true;
    }

    /// <summary>
    /// Decodes base64url text that encodes exactly <paramref name="destination"/>'s length, in its one
    /// canonical spelling. Never throws: this runs on bytes straight from clients.
    /// </summary>
    internal static bool TryDecodeCanonical(ReadOnlySpan<char> text, Span<byte> destination)
    {
        var status = Base64Url.DecodeFromChars(text, destination, out var consumed, out var written);
        if (status != OperationStatus.Done || consumed != text.Length || written != destination.Length)
        {
            return false;
        }

        // A final character can carry unused bits; a second spelling of the same bytes is not accepted.
        Span<char> canonical = stackalloc char[Base64Url.GetEncodedLength(destination.Length)];
        return Base64Url.TryEncodeToChars(destination, canonical, out var encoded) && canonical[..encoded].SequenceEqual(text);
    }

    /// <summary>A short, stable hash of the id, for logs and traces.</summary>
    public string Hash
    {
        get
        {
            Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
            SHA256.HashData(Encoding.ASCII.GetBytes(Value ?? string.Empty), digest);
            return Convert.ToHexStringLower(digest[..6]);
        }
    }

    public override string ToString() => "sid#" + Hash;
}
