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

    /// <summary>Removes the cookies <paramref name="doomed"/> picks (by name and value) from an outgoing request's Cookie header(s).</summary>
    public static void RemoveCookies(HttpRequestHeaders headers, Func<string, string, bool> doomed)
    {
        if (!headers.TryGetValues("Cookie", out var values))
        {
            return;
        }

        var kept = new List<string>();
        var removed = 0;
        foreach (var header in values)
        {
            foreach (var pair in header.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                var name = eq < 0 ? pair : pair[..eq].Trim();
                var value = eq < 0 ? string.Empty : pair[(eq + 1)..].Trim();
                if (doomed(name, value))
                {
                    removed++;
                }
                else
                {
                    kept.Add(pair);
                }
            }
        }

        if (removed == 0)
        {
            return;
        }

        headers.Remove("Cookie");
        if (kept.Count > 0)
        {
            headers.TryAddWithoutValidation("Cookie", string.Join("; ", kept));
        }
    }
}
