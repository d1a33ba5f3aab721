using System.Net;
using System.Runtime.CompilerServices;

namespace Baton.Tests.Infrastructure;

/// <summary>The cookie container behind a client made by <see cref="TestGateway.NewClient"/>.</summary>
internal static class CookieJar
{
    private static readonly ConditionalWeakTable<HttpClient, CookieContainer> Jars = new();

    public static HttpClient WithJar(CookieContainer jar)
    {
        var client = new HttpClient(new HttpClientHandler { UseCookies = true, CookieContainer = jar, AllowAutoRedirect = false });
        Jars.Add(client, jar);
        return client;
    }

    public static CookieContainer Of(HttpClient client)
        => Jars.TryGetValue(client, out var jar) ? jar : throw new InvalidOperationException("This client has no cookie jar.");
}
