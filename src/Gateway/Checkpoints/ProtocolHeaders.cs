using System.Net.Http.Headers;
using Baton.Protocol;

namespace Baton.Gateway.Checkpoints;

/// <summary>
/// Removes every protocol header, in any spelling (case, <c>_</c> for <c>-</c>), wherever one could cross
/// between a client and the protocol: client requests, responses of every status, and trailers.
/// </summary>
internal static class ProtocolHeaders
{
    /// <summary>Removes protocol headers; returns how many names were removed.</summary>
    public static int Strip(HttpHeaders headers)
    {
        List<string>? doomed = null;
        foreach (var header in headers.NonValidated)
        {
            if (ProtocolConstants.IsProtocolHeader(header.Key))
            {
                (doomed ??= []).Add(header.Key);
            }
        }

        foreach (var name in doomed ?? [])
        {
            headers.Remove(name);
        }

        return doomed?.Count ?? 0;
    }

    /// <summary>Removes protocol headers; returns how many names were removed.</summary>
    public static int Strip(IHeaderDictionary headers)
    {
        List<string>? doomed = null;
        foreach (var name in headers.Keys)
        {
            if (ProtocolConstants.IsProtocolHeader(name))
            {
                (doomed ??= []).Add(name);
            }
        }

        foreach (var name in doomed ?? [])
        {
            headers.Remove(name);
        }

        return doomed?.Count ?? 0;
    }

    /// <summary>Removes the named cookie from an outgoing request's Cookie header(s).</summary>
    public static void RemoveCookie(HttpRequestHeaders headers, string cookieName)
    {
        if (!headers.TryGetValues("Cookie", out var values))
        {
            return;
        }

        var kept = new List<string>();
        foreach (var value in values)
        {
            foreach (var pair in value.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                var name = eq < 0 ? pair : pair[..eq].Trim();
                if (!string.Equals(name, cookieName, StringComparison.Ordinal))
                {
                    kept.Add(pair);
                }
            }
        }

        headers.Remove("Cookie");
        if (kept.Count > 0)
        {
            headers.TryAddWithoutValidation("Cookie", string.Join("; ", kept));
        }
    }
}
