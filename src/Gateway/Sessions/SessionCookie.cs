using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using Baton.Protocol;
using Yarp.ReverseProxy.Configuration;

namespace Baton.Gateway.Sessions;

/// <summary>What the gateway makes of a session cookie a client sent.</summary>
internal enum CookieVerdict
{
    /// <summary>No cookie of that name.</summary>
    Missing,

    /// <summary>Not the shape of a cookie the gateway issues.</summary>
    Malformed,

    /// <summary>The right shape, but not signed with the gateway's secret: forged or from another deployment.</summary>
    BadSignature,

    /// <summary>Issued by this gateway (the signature holds).</summary>
    Valid,
}

/// <summary>
/// The session cookie: <c>{id}.{mac}</c>, where mac is HMAC-SHA256 over the id, truncated to 128 bits,
/// keyed by the cookie key derived from <c>Baton:Secret</c> (<see cref="ProtocolKeys"/>). The signature lets the gateway tell its own ids from
/// guesses before any lookup, and lets any gateway instance sharing the secret accept the cookie.
/// </summary>
internal sealed class SessionCookie
{
    public const int MacLength = 16;
    public const int EncodedMacLength = 22;
    public const int EncodedLength = SessionId.EncodedLength + 1 + EncodedMacLength;
    private const char Separator = '.';

    private readonly ProtocolKeys _keys;

    public SessionCookie(ProtocolKeys keys) => _keys = keys;

    public string Protect(SessionId id)
    {
        Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
        ComputeMac(id.Value, mac);
        return string.Concat(id.Value, Separator.ToString(), Base64Url.EncodeToString(mac[..MacLength]));
    }

    public CookieVerdict Unprotect(string? cookie, out SessionId id)
    {
        id = default;
        if (string.IsNullOrEmpty(cookie))
        {
            return CookieVerdict.Missing;
        }

        if (cookie.Length != EncodedLength || cookie[SessionId.EncodedLength] != Separator
            || !SessionId.TryParse(cookie.AsSpan(0, SessionId.EncodedLength), out var candidate))
        {
            return CookieVerdict.Malformed;
        }

        Span<byte> presented = stackalloc byte[MacLength];
        if (!Ids.TryDecodeCanonical(cookie.AsSpan(SessionId.EncodedLength + 1), presented))
        {
            return CookieVerdict.Malformed;
        }

        Span<byte> expected = stackalloc byte[HMACSHA256.HashSizeInBytes];
        ComputeMac(candidate.Value, expected);
        if (!CryptographicOperations.FixedTimeEquals(expected[..MacLength], presented))
        {
            return CookieVerdict.BadSignature;
        }

        id = candidate;
        return CookieVerdict.Valid;
    }

    /// <summary>The cookie's attributes: secure by default, overridable only where that stays safe.</summary>
    public static CookieOptions CreateOptions(SessionAffinityCookieConfig? config, bool requestIsHttps, DateTimeOffset now)
    {
        return new CookieOptions
        {
            HttpOnly = true,
            SameSite = config?.SameSite ?? SameSiteMode.Lax,
            Secure = config?.SecurePolicy switch
            {
                CookieSecurePolicy.Always => true,
                CookieSecurePolicy.None => false,
                _ => requestIsHttps,
            },
            Path = config?.Path ?? "/",
            Domain = config?.Domain,
            MaxAge = config?.MaxAge,
            Expires = config?.Expiration is { } expiration ? now.Add(expiration) : null,
            IsEssential = config?.IsEssential ?? true,
        };
    }

    private void ComputeMac(string id, Span<byte> destination)
    {
        Span<byte> idBytes = stackalloc byte[SessionId.EncodedLength];
        Encoding.ASCII.GetBytes(id, idBytes);
        _keys.SignCookie(idBytes, destination);
    }
}
