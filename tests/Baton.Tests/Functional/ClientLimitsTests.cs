using System.Net;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Functional;

/// <summary><c>Baton:Limits</c> reach the gateway's server: a client past one gets its own status, and no <c>Server</c> header is sent.</summary>
[Trait("Category", "Functional")]
public sealed class ClientLimitsTests : IClassFixture<ClientLimitsTests.Cluster>
{
    private readonly Cluster _cluster;

    public ClientLimitsTests(Cluster cluster) => _cluster = cluster;

    [Fact]
    public async Task HeadersOverTheLimit_Get431_AndNoBackendSeesThem()
    {
        using var client = _cluster.Gateway.NewRawClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/counter");
        request.Headers.Add("X-Padding", new string('a', 8 * 1024));

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
    }

    [Fact]
    public async Task ABodyOverTheLimit_Gets413()
    {
        using var client = _cluster.Gateway.NewClient();
        using var response = await client.PostAsync(new Uri("/cart/items", UriKind.Relative), new ByteArrayContent(new byte[20_000]));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Contains("larger than the gateway accepts", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Answers_CarryNoServerHeader()
    {
        using var client = _cluster.Gateway.NewClient();
        using var response = await client.GetAsync(new Uri("/counter", UriKind.Relative));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(response.Headers.Server);
    }

    public sealed class Cluster : TestCluster
    {
        protected override string[] GatewayArgs => ["--Baton:Limits:MaxRequestHeadersBytes=4096", "--Baton:Limits:MaxRequestBodyBytes=10000"];
    }
}
