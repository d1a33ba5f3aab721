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

    /// <summary>More than one cookie goes by the session cookie's name in some spelling: which is the client's cannot be told.</summary>
    Ambiguous,
}

/// <summary>
/// The session cookie: <c>{id}.{mac}</c>, where mac is HMAC-SHA256 over the id, truncated to 128 bits,
/// keyed by the cookie key derived from <c>Baton:Secret</c> (<see cref="ProtocolKeys"/>). The signature lets the gateway tell its own ids from
/// guesses before any lookup, and lets any gateway instance sharing the secret accept the cookie.
/// </summary>
internal sealed class SessionCookie
{
    /// <summary>The prefix browsers hold to host-only, Secure, Path=/ cookies: no subdomain can plant or overwrite one.</summary>
    public const string HostPrefix = "__Host-";

    public const int MacLength = 16;
    public const int EncodedMacLength = 22;
    public const int EncodedLength = SessionId.EncodedLength + 1 + EncodedMacLength;
    private const char Separator = '.';

    private readonly ProtocolKeys _keys;
    private readonly bool _hostPrefix;

    /// <param name="keys">The keys derived from <c>Baton:Secret</c>.</param>
    /// <param name="hostPrefix"><c>Baton:Sessions:HostPrefix</c>.</param>
    public SessionCookie(ProtocolKeys keys, bool hostPrefix = true)
    {
        _keys = keys;
        _hostPrefix = hostPrefix;
    }

    /// <summary>
    /// The cookie's name on this request: <c>__Host-</c> + the affinity key name over HTTPS (unless turned
    /// off, or the cookie is configured with a domain or a path, which the prefix forbids); the key name alone
    /// otherwise. Over HTTPS only the prefixed cookie is read, so a cookie planted without it is ignored.
    /// </summary>
    public string NameFor(SessionAffinityConfig affinity, HttpRequest request)
        => UsesHostPrefix(affinity.Cookie, request.IsHttps) ? HostPrefix + affinity.AffinityKeyName : affinity.AffinityKeyName!;

    /// <summary>
    /// Reads the session cookie from the request by its exact name (<see cref="NameFor"/>): a cookie of another
    /// spelling (<c>__host-baton.sid</c>, which some browsers let a subdomain set) is never taken for it, and
    /// when two cookies go by the name in any spelling the request is <see cref="CookieVerdict.Ambiguous"/>.
    /// </summary>
    public CookieVerdict Read(HttpRequest request, SessionAffinityConfig affinity, out SessionId id)
    {
        id = default;
        var name = NameFor(affinity, request);
        string? value = null;
        var alike = 0;
        foreach (var header in request.Headers.Cookie)
        {
            foreach (var pair in (header ?? string.Empty).Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                var candidate = eq < 0 ? pair : pair[..eq].Trim();
                if (string.Equals(candidate, name, StringComparison.OrdinalIgnoreCase))
                {
                    alike++;
                    if (string.Equals(candidate, name, StringComparison.Ordinal) && eq >= 0)
                    {
                        value = pair[(eq + 1)..].Trim();
                    }
                }
            }
        }

        return alike > 1 ? CookieVerdict.Ambiguous : Unprotect(value, out id);
    }

    /// <summary>True for a request cookie name that is the session cookie's in either spelling, whatever its case.</summary>
    public static bool IsSessionCookieName(string candidate, string affinityKeyName)
        => string.Equals(candidate, affinityKeyName, StringComparison.OrdinalIgnoreCase)
           || string.Equals(candidate, HostPrefix + affinityKeyName, StringComparison.OrdinalIgnoreCase);

    /// <summary>Sets the session's cookie on the response, and keeps shared caches from storing it.</summary>
    public void Issue(HttpContext context, SessionAffinityConfig affinity, SessionId id, DateTimeOffset now)
    {
        var https = context.Request.IsHttps;
        var options = CreateOptions(affinity.Cookie, https, now);
        if (UsesHostPrefix(affinity.Cookie, https))
        {
            options.Secure = true;
        }

        Replace(context.Response, NameFor(affinity, context.Request), Protect(id), options);
    }

    /// <summary>Expires the session's cookie on the response (the session ended).</summary>
    public void Expire(HttpContext context, SessionAffinityConfig affinity, DateTimeOffset now)
    {
        var options = CreateOptions(affinity.Cookie, context.Request.IsHttps, now);
        options.Expires = DateTimeOffset.UnixEpoch;
        options.MaxAge = null;
        if (UsesHostPrefix(affinity.Cookie, context.Request.IsHttps))
        {
            options.Secure = true;
        }

        Replace(context.Response, NameFor(affinity, context.Request), string.Empty, options);
    }

    // One Set-Cookie for the session per response: a rotation replaces the one issued earlier in it.
    private static void Replace(HttpResponse response, string name, string value, CookieOptions options)
    {
        var others = response.Headers.SetCookie.Where(c => c is not null && !c.StartsWith(name + "=", StringComparison.Ordinal)).ToArray();
        response.Headers.SetCookie = others;
        response.Cookies.Append(name, value, options);
        KeepOutOfSharedCaches(response);
    }

    /// <summary>True when a cookie value is one this gateway issued (its signature holds), whatever its name.</summary>
    public bool IsOurs(string value) => value.Length == EncodedLength && Unprotect(value, out _) == CookieVerdict.Valid;

    // A response that sets a session cookie must never be served to someone else from a shared cache.
    private static void KeepOutOfSharedCaches(HttpResponse response)
    {
        var directives = response.Headers.CacheControl.ToString();
        if (directives.Contains("private", StringComparison.OrdinalIgnoreCase) || directives.Contains("no-store", StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        var kept = directives.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Where(d => !d.Equals("public", StringComparison.OrdinalIgnoreCase) && !d.StartsWith("s-maxage", StringComparison.OrdinalIgnoreCase));
        response.Headers.CacheControl = string.Join(", ", kept.Prepend("private"));
    }

    private bool UsesHostPrefix(SessionAffinityCookieConfig? cookie, bool https)
        => _hostPrefix && https && cookie?.Domain is null && (cookie?.Path is null or "/");

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
