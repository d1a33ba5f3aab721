using System.Net;
using System.Net.Http.Headers;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Operations;

/// <summary>
/// Who reaches the admin endpoints: nobody when <c>Baton:Admin:Token</c> is unset (404), and with a token only
/// loopback callers — a caller a trusted proxy reports as remote gets 403 even with the token, unless
/// <c>Baton:Admin:AllowRemote</c>. The remote caller is simulated by <c>X-Forwarded-For</c> from a trusted proxy on loopback.
/// </summary>
[Trait("Category", "Functional")]
public sealed class AdminAccessTests : IAsyncLifetime, IDisposable
{
    private const string Token = "admin-token-0123456789abcdef0123456789";
    private const string RemoteAddress = "203.0.113.9";
    private readonly LogCapture _logs = new();
    private TestBackend _backend = null!;
    private TestGateway _off = null!;
    private TestGateway _loopbackOnly = null!;
    private TestGateway _remoteAllowed = null!;

    // Every destination of the shipped cluster at the one backend: no gateway probes an address nobody started.
    private TestBackend[] Cluster => [_backend, _backend, _backend];

    public async Task InitializeAsync()
    {
        _backend = await TestBackend.StartAsync("b1");
        _off = await TestGateway.StartAsync(Cluster, ["--Baton:ForwardedHeaders:KnownProxies:0=127.0.0.1"]);
        _loopbackOnly = await TestGateway.StartAsync(Cluster, [$"--Baton:Admin:Token={Token}", "--Baton:ForwardedHeaders:KnownProxies:0=127.0.0.1"], _logs.AttachTo);
        _remoteAllowed = await TestGateway.StartAsync(Cluster, [$"--Baton:Admin:Token={Token}", "--Baton:Admin:AllowRemote=true", "--Baton:ForwardedHeaders:KnownProxies:0=127.0.0.1"]);
    }

    public async Task DisposeAsync()
    {
        await _off.DisposeAsync();
        await _loopbackOnly.DisposeAsync();
        await _remoteAllowed.DisposeAsync();
        await _backend.DisposeAsync();
    }

    public void Dispose() => _logs.Dispose();

    [Theory]
    [InlineData("GET", "/_baton/admin/drains")]
    [InlineData("POST", "/_baton/admin/clusters/demo/destinations/b1/drain")]
    [InlineData("POST", "/_baton/admin/clusters/demo/destinations/b1/undrain")]
    public async Task WithoutAToken_TheAdminEndpointsAreOff_AndAnswer404WhateverIsSent(string method, string path)
    {
        using var client = new HttpClient { BaseAddress = _off.Address };

        using var anonymous = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
        using var bearing = await client.SendAsync(Request(method, path, Token));
        using var remote = await client.SendAsync(Request(method, path, Token, RemoteAddress));

        Assert.Equal(HttpStatusCode.NotFound, anonymous.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, bearing.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, remote.StatusCode);

        // A gateway with a token serves the admin endpoints (read-only here: the gateway is shared): the 404 is their being off.
        using var on = new HttpClient { BaseAddress = _loopbackOnly.Address };
        using var served = await on.SendAsync(Request("GET", "/_baton/admin/drains", Token));
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
    }

    [Fact]
    public async Task ACallerReportedRemote_Gets403EvenWithTheToken_AndChangesNothing_WhileLoopbackWithTheTokenIsServed()
    {
        using var client = new HttpClient { BaseAddress = _loopbackOnly.Address };

        using var remote = await client.SendAsync(Request("POST", "/_baton/admin/clusters/demo/destinations/b1/drain", Token, RemoteAddress));
        using var remoteWithoutToken = await client.SendAsync(Request("GET", "/_baton/admin/drains", token: null, RemoteAddress));

        Assert.Equal(HttpStatusCode.Forbidden, remote.StatusCode);
        Assert.Equal("Admin requests are accepted from loopback only (Baton:Admin:AllowRemote).", await remote.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Forbidden, remoteWithoutToken.StatusCode);
        Assert.Contains(_logs.Lines, l => l.Contains("[9002] Admin request refused (not loopback).", StringComparison.Ordinal));

        // The refused drain did not happen; from loopback the same token is served.
        using var drains = await client.SendAsync(Request("GET", "/_baton/admin/drains", Token));
        Assert.Equal(HttpStatusCode.OK, drains.StatusCode);
        Assert.Equal("[]", await drains.Content.ReadAsStringAsync());
        using var loopbackWithoutToken = await client.SendAsync(Request("GET", "/_baton/admin/drains", token: null));
        Assert.Equal(HttpStatusCode.Unauthorized, loopbackWithoutToken.StatusCode);
    }

    [Fact]
    public async Task FromLoopback_NoTokenOrAWrongOneGets401_AndAnUnknownDestination404()
    {
        using var client = new HttpClient { BaseAddress = _loopbackOnly.Address };
        const string Drain = "/_baton/admin/clusters/demo/destinations/b1/drain";

        using var none = await client.SendAsync(Request("POST", Drain, token: null));
        using var wrong = await client.SendAsync(Request("POST", Drain, "not-the-token"));
        using var unknown = await client.SendAsync(Request("POST", "/_baton/admin/clusters/demo/destinations/nope/drain", Token));

        Assert.Equal(HttpStatusCode.Unauthorized, none.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using var drains = await client.SendAsync(Request("GET", "/_baton/admin/drains", Token));
        Assert.Equal("[]", await drains.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task WithAllowRemote_ARemoteCallerWithTheTokenIsServed_AndOneWithoutItGets401()
    {
        using var client = new HttpClient { BaseAddress = _remoteAllowed.Address };

        using var served = await client.SendAsync(Request("GET", "/_baton/admin/drains", Token, RemoteAddress));
        using var refused = await client.SendAsync(Request("GET", "/_baton/admin/drains", "not-the-token", RemoteAddress));

        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
    }

    private static HttpRequestMessage Request(string method, string path, string? token, string? forwardedFor = null)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (forwardedFor is not null)
        {
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        }

        return request;
    }
}
