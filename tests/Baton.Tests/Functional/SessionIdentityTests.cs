using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Baton.Tests.Functional;

/// <summary>
/// Session identity at the edge: login rotates the id, logout ends the session, a planted id is worthless
/// after either, and the cookie stays where it belongs (never in a shared cache, never at a cluster without
/// Baton affinity, prefixed <c>__Host-</c> over HTTPS as a trusted proxy reports it).
/// </summary>
[Trait("Category", "Functional")]
public sealed class SessionIdentityTests : IAsyncLifetime
{
    private readonly List<TestBackend> _backends = [];
    private TestBackend _plain = null!;
    private TestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        // A backend of a cluster without Baton affinity, answering with the cookies it was sent.
        var echo = WebApplication.CreateBuilder(new WebApplicationOptions { Args = ["--urls=http://127.0.0.1:0"], EnvironmentName = "Production" });
        echo.Configuration["Logging:LogLevel:Default"] = "Warning";
        var app = echo.Build();
        app.MapGet("/plain/cookies", (HttpRequest request) => request.Headers.Cookie.ToString());
        _plain = await TestBackend.StartAppAsync("plain", app);

        _gateway = await TestGateway.StartAsync(_backends,
        [
            "--ReverseProxy:Routes:plain:ClusterId=plain",
            "--ReverseProxy:Routes:plain:Match:Path=/plain/{**rest}",
            $"--ReverseProxy:Clusters:plain:Destinations:p1:Address={_plain.Address}",
            "--Baton:ForwardedHeaders:KnownProxies:0=127.0.0.1",
        ]);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        foreach (var backend in _backends.Append(_plain))
        {
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task Login_GivesTheSessionANewIdCarryingItsState_AndThePlantedIdReachesNothing()
    {
        using var victim = _gateway.NewRawClient();
        var (planted, _) = await SendAsync(victim, HttpMethod.Post, "/counter", cookie: null);
        await SendAsync(victim, HttpMethod.Post, "/counter", planted);

        var (renewed, login) = await SendAsync(victim, HttpMethod.Post, "/login", planted, JsonContent.Create(new { user = "ann" }));
        Assert.NotNull(renewed);
        Assert.NotEqual(planted, renewed);
        Assert.Equal("ann", JsonDocument.Parse(login).RootElement.GetProperty("user").GetString());

        var (_, mine) = await SendAsync(victim, HttpMethod.Get, "/counter", renewed);
        Assert.Equal(2, Count(mine));

        // Whoever still holds the old id (the one who planted it) gets a fresh, empty session.
        var (fresh, theirs) = await SendAsync(victim, HttpMethod.Get, "/counter", planted);
        Assert.Equal(0, Count(theirs));
        Assert.NotNull(fresh);
        Assert.NotEqual(planted, fresh);
    }

    [Fact]
    public async Task Logout_EndsTheSession_AndItsOldCookieStartsAFreshEmptyOne()
    {
        using var client = _gateway.NewRawClient();
        var (cookie, _) = await SendAsync(client, HttpMethod.Post, "/counter", cookie: null);
        await SendAsync(client, HttpMethod.Post, "/counter", cookie);

        using var logout = await RawAsync(client, HttpMethod.Post, "/logout", cookie);
        Assert.Equal(HttpStatusCode.OK, logout.StatusCode);
        Assert.Contains(logout.Headers.GetValues("Set-Cookie"), c => c.StartsWith($"{TestGateway.CookieName}=;", StringComparison.Ordinal) && c.Contains("expires=Thu, 01 Jan 1970", StringComparison.OrdinalIgnoreCase));

        var (fresh, answer) = await SendAsync(client, HttpMethod.Get, "/counter", cookie);
        Assert.Equal(0, Count(answer));
        Assert.NotEqual(cookie, fresh);
    }

    [Fact]
    public async Task AResponseSettingTheCookie_IsPrivate_SoNoSharedCacheKeepsIt()
    {
        using var client = _gateway.NewRawClient();
        using var response = await RawAsync(client, HttpMethod.Get, "/counter", cookie: null);

        Assert.Contains(response.Headers.GetValues("Set-Cookie"), c => c.StartsWith(TestGateway.CookieName + "=", StringComparison.Ordinal));
        Assert.True(response.Headers.CacheControl?.Private, $"Cache-Control: {response.Headers.CacheControl}");
    }

    [Fact]
    public async Task AClusterWithoutBatonAffinity_NeverSeesTheSessionCookie_ButGetsTheAppsOwn()
    {
        using var client = _gateway.NewRawClient();
        var (cookie, _) = await SendAsync(client, HttpMethod.Post, "/counter", cookie: null);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/plain/cookies");
        request.Headers.Add("Cookie", $"theme=dark; {TestGateway.CookieName}={cookie}; renamed={cookie}");
        using var response = await client.SendAsync(request);
        var seen = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("theme=dark", seen);
    }

    [Fact]
    public async Task OverHttpsAsATrustedProxyReportsIt_TheCookieIsHostPrefixedAndSecure_AndAnUnprefixedOneIsIgnored()
    {
        using var client = _gateway.NewRawClient();
        using var first = new HttpRequestMessage(HttpMethod.Post, "/counter");
        first.Headers.Add("X-Forwarded-Proto", "https");
        using var response = await client.SendAsync(first);
        var setCookie = Assert.Single(response.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith($"__Host-{TestGateway.CookieName}=", setCookie, StringComparison.Ordinal);
        Assert.Contains("secure", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("path=/", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("domain=", setCookie, StringComparison.OrdinalIgnoreCase);
        var value = setCookie.Split(';')[0].Split('=', 2)[1];

        // The same id without the prefix (what a subdomain could plant) does not carry the session over HTTPS.
        using var planted = new HttpRequestMessage(HttpMethod.Get, "/counter");
        planted.Headers.Add("X-Forwarded-Proto", "https");
        planted.Headers.Add("Cookie", $"{TestGateway.CookieName}={value}");
        using var ignored = await client.SendAsync(planted);
        Assert.Equal(0, Count(await ignored.Content.ReadAsStringAsync()));

        using var kept = new HttpRequestMessage(HttpMethod.Get, "/counter");
        kept.Headers.Add("X-Forwarded-Proto", "https");
        kept.Headers.Add("Cookie", $"__Host-{TestGateway.CookieName}={value}");
        using var carried = await client.SendAsync(kept);
        Assert.Equal(1, Count(await carried.Content.ReadAsStringAsync()));
    }

    [Theory]
    [InlineData("__host-{0}={1}")]
    [InlineData("__Host-{0}={1}; __HOST-{0}={1}")]
    [InlineData("__Host-{0}={1}; __host-{0}=planted")]
    public async Task OverHttps_ACookieOfAnotherSpellingOrTwoOfTheName_CarryNoSession(string cookies)
    {
        using var client = _gateway.NewRawClient();
        using var first = new HttpRequestMessage(HttpMethod.Post, "/counter");
        first.Headers.Add("X-Forwarded-Proto", "https");
        using var response = await client.SendAsync(first);
        var value = Assert.Single(response.Headers.GetValues("Set-Cookie")).Split(';')[0].Split('=', 2)[1];

        using var planted = new HttpRequestMessage(HttpMethod.Get, "/counter");
        planted.Headers.Add("X-Forwarded-Proto", "https");
        planted.Headers.Add("Cookie", string.Format(System.Globalization.CultureInfo.InvariantCulture, cookies, TestGateway.CookieName, value));
        using var answer = await client.SendAsync(planted);

        Assert.Equal(0, Count(await answer.Content.ReadAsStringAsync()));
    }

    private static int Count(string json) => JsonDocument.Parse(json).RootElement.GetProperty("count").GetInt32();

    /// <summary>Sends with the given session cookie; gives the session cookie the answer set (or the one sent) and the body.</summary>
    private static async Task<(string? Cookie, string Body)> SendAsync(HttpClient client, HttpMethod method, string path, string? cookie, HttpContent? content = null)
    {
        using var response = await RawAsync(client, method, path, cookie, content);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{method} {path} answered {(int)response.StatusCode}: {body}");
        var issued = response.Headers.TryGetValues("Set-Cookie", out var values)
            ? values.Select(v => v.Split(';')[0]).Where(v => v.StartsWith(TestGateway.CookieName + "=", StringComparison.Ordinal)).Select(v => v[(TestGateway.CookieName.Length + 1)..]).LastOrDefault()
            : null;
        return (issued ?? cookie, body);
    }

    private static Task<HttpResponseMessage> RawAsync(HttpClient client, HttpMethod method, string path, string? cookie, HttpContent? content = null)
    {
        var request = new HttpRequestMessage(method, path) { Content = content };
        if (cookie is not null)
        {
            request.Headers.Add("Cookie", $"{TestGateway.CookieName}={cookie}");
        }

        return client.SendAsync(request);
    }
}
