using System.Security.Cryptography;
using System.Text;

namespace Baton.Protocol;

/// <summary>
/// Keys derived from the shared secret, one per purpose, so a MAC made for one message can never pass as
/// another: HKDF-SHA256(secret as UTF-8, no salt, info = "baton/v1/" + purpose), 32 bytes.
/// </summary>
public sealed class ProtocolKeys
{
    /// <summary>Derives every purpose's key from the shared secret (<c>Baton:Secret</c>).</summary>
    public ProtocolKeys(string secret)
    {
        ArgumentException.ThrowIfNullOrEmpty(secret);
        var ikm = Encoding.UTF8.GetBytes(secret);
        Cookie = Derive(ikm, "cookie");
        Grant = Derive(ikm, "grant");
        Checkpoint = Derive(ikm, "checkpoint");
        Restore = Derive(ikm, "restore");
        Action = Derive(ikm, "action");
    }

    /// <summary>Signs the gateway's session cookies (gateway only).</summary>
    internal byte[] Cookie { get; }

    internal byte[] Grant { get; }

    internal byte[] Checkpoint { get; }

    internal byte[] Restore { get; }

    internal byte[] Action { get; }

    /// <summary>HMAC-SHA256 of the cookie's id text, with the cookie key (the gateway's cookie signature).</summary>
    public void SignCookie(ReadOnlySpan<byte> data, Span<byte> mac) => Hashing.Hmac(Cookie, data, mac);

    private static byte[] Derive(byte[] ikm, string purpose)
        => HKDF.DeriveKey(HashAlgorithmName.SHA256, ikm, 32, salt: null, info: Encoding.ASCII.GetBytes("baton/v1/" + purpose));
}
