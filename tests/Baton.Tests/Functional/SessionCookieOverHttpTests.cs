using System.Net;
using System.Text.Json;
using Baton.Gateway.Sessions;
using Baton.Protocol;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Functional;

[Trait("Category", "Functional")]
public sealed class SessionCookieOverHttpTests(TestCluster cluster) : IClassFixture<TestCluster>
{
    [Fact]
    public async Task FirstRequest_IssuesHttpOnlyLaxCookie_NotSecureOverPlainHttp()
    {
        using var client = cluster.Gateway.NewRawClient();

        using var response = await client.PostAsync(new Uri("/counter", UriKind.Relative), content: null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var cookie = SessionSetCookie(response);
        var attributes = cookie.Split(';', StringSplitOptions.TrimEntries).Skip(1).Select(a => a.ToLowerInvariant()).ToList();
        Assert.Contains("httponly", attributes);
        Assert.Contains("samesite=lax", attributes);
        Assert.Contains("path=/", attributes);
        Assert.DoesNotContain("secure", attributes);
        Assert.Equal(SessionCookie.EncodedLength, CookieValue(cookie).Length);
    }

    [Fact]
    public async Task KnownCookie_IsAdopted_AndNotSetAgain()
    {
        using var client = cluster.Gateway.NewRawClient();
        using var first = await client.PostAsync(new Uri("/counter", UriKind.Relative), content: null);
        var value = CookieValue(SessionSetCookie(first));

        // The gateway's cookie alone carries the session: the backend keys it by the gateway's id.
        using var request = new HttpRequestMessage(HttpMethod.Post, "/counter");
        request.Headers.Add("Cookie", $"{TestGateway.CookieName}={value}");
        using var second = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.False(second.Headers.TryGetValues("Set-Cookie", out var set) && set.Any(c => c.StartsWith(TestGateway.CookieName + "=", StringComparison.Ordinal)));
        Assert.Equal(2, await CountAsync(second));
    }

    public static TheoryData<string, string> UnissuedCookies => new()
    {
        { "garbage", "not-a-session-cookie" },
        { "empty-ish", "." },
        { "oversized", new string('A', 5000) },
        { "right-length-bad-alphabet", "AAAAAAAAAAAAAAAAAAAAA!.AAAAAAAAAAAAAAAAAAAAA!" },
        { "non-canonical-signature", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAB" },
        { "forged", new SessionCookie(new ProtocolKeys("another-deployments-secret-0123456789abcdef")).Protect(SessionId.New()) },
        { "tampered", Tamper(new SessionCookie(new ProtocolKeys(TestGateway.Secret)).Protect(SessionId.New())) },
        { "never-issued", new SessionCookie(new ProtocolKeys(TestGateway.Secret)).Protect(SessionId.New()) },
    };

    [Theory]
    [MemberData(nameof(UnissuedCookies))]
    public async Task CookieTheGatewayDoesNotTrack_GetsAFreshSessionAnd2xx(string kind, string value)
    {
        using var client = cluster.Gateway.NewRawClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/counter");
        request.Headers.Add("Cookie", $"{TestGateway.CookieName}={value}");

        using var response = await client.SendAsync(request);

        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{kind}: {(int)response.StatusCode}");
        var issued = CookieValue(SessionSetCookie(response));
        Assert.NotEqual(value, issued);
        Assert.Equal(1, await CountAsync(response));
    }

    internal static string SessionSetCookie(HttpResponseMessage response)
        => Assert.Single(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith(TestGateway.CookieName + "=", StringComparison.Ordinal));

    internal static string CookieValue(string setCookie) => setCookie.Split(';')[0][(TestGateway.CookieName.Length + 1)..];

    private static async Task<int> CountAsync(HttpResponseMessage response)
    {
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("count").GetInt32();
    }

    // Flips the first character of the signature (every bit of it counts, unlike the last one's).
    private static string Tamper(string cookie)
    {
        var at = SessionId.EncodedLength + 1;
        return string.Concat(cookie.AsSpan(0, at), cookie[at] == 'A' ? "B" : "A", cookie.AsSpan(at + 1));
    }
}
