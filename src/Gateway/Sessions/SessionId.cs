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

        Span<byte> bytes = stackalloc byte[ByteLength + 2];
        if (!Base64Url.TryDecodeFromChars(text, bytes, out var written) || written != ByteLength)
        {
            return false;
        }

        // The last character carries four unused bits; only the canonical spelling is an id.
        Span<char> canonical = stackalloc char[EncodedLength];
        if (!Base64Url.TryEncodeToChars(bytes[..ByteLength], canonical, out _) || !canonical.SequenceEqual(text))
        {
            return false;
        }

        id = new SessionId(text.ToString());
        return true;
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
