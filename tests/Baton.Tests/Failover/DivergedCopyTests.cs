using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Baton.DemoBackend;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Model;

namespace Baton.Tests.Failover;

/// <summary>
/// A backend that resumes holding a change the gateway never stored — at the same version as the one the
/// session's new owner made, with other content — never serves that copy: when the session comes back to it,
/// it is served the stored state, restored over its own. Real backend processes paused and resumed
/// (SIGSTOP/SIGCONT) and killed, real Redis, a real gateway.
/// </summary>
[Trait("Category", "Functional")]
public sealed class DivergedCopyTests : IAsyncLifetime
{
    private const string AdminToken = "admin-token-0123456789abcdef0123456789abcdef";

    private ProcessCluster _cluster = null!;

    // A long attempt timeout: the request to the paused owner waits for its answer instead of being failed over,
    // so the owner surely runs it once resumed. Fast active checks bring the resumed owner back soon.
    public async Task InitializeAsync() => _cluster = await ProcessCluster.StartAsync(
    [
        "--ReverseProxy:Clusters:demo:HttpRequest:ActivityTimeout=00:01:00",
        "--ReverseProxy:Clusters:demo:HealthCheck:Active:Interval=00:00:01",
        $"--Baton:Admin:Token={AdminToken}",
    ]);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task AResumedBackendHoldingAnUnstoredChangeAtTheNewOwnersVersion_IsServedTheNewOwnersStateWhenTheSessionReturns_NeverItsOwn()
    {
        using var client = _cluster.Gateway.NewClient();
        var first = await AddAsync(client, "first");
        var owner = _cluster.Backend(first.Instance);
        var sid = SessionCookies.SessionIdOf(client, _cluster.Gateway);
        Assert.True(_cluster.Gateway.Services.GetRequiredService<IProxyStateLookup>().TryGetCluster("demo", out var cluster));
        using var fenced = new InstrumentCounter(_cluster.Gateway, "baton.checkpoint.count", "baton.outcome", "fenced");

        // How the owner comes to apply a request the gateway does not resend: the request reaches the owner while
        // it is paused and waits there (the attempt timeout is long); meanwhile the session moves away and the new
        // owner makes version 2. Resumed, the owner runs the waiting request on its copy — version 1 of the old
        // epoch — and makes its own version 2. Its checkpoint is fenced (an epoch the session left), and a POST
        // without an Idempotency-Key is not resent: answered 503, nothing changed, while the owner's memory keeps
        // the change.
        owner.Pause();
        Task<HttpResponseMessage> late;
        string newOwner;
        try
        {
            late = client.PostAsJsonAsync(new Uri("/cart/items", UriKind.Relative), new CartItem("late", 1));
            await Eventually.TrueAsync(() => cluster.Destinations[owner.InstanceId].ConcurrentRequestCount >= 1, TimeSpan.FromSeconds(10), "the gateway should forward the request to the paused owner");
            await AdminAsync("drain", owner);
            var moved = await AddAsync(client, "moved");
            newOwner = moved.Instance;
            Assert.NotEqual(owner.InstanceId, newOwner);
            Assert.Equal(["first", "moved"], Skus(moved));
            Assert.Equal(2, StoredSessions.FromJournal(_cluster.Gateway.JournalPath, sid)!.Version);
        }
        finally
        {
            owner.Resume();
        }

        using (var answer = await late)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
            Assert.Contains("nothing was changed", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The owner did apply it: its version 2 of the old epoch reached the gateway, which refused it.
        Assert.Equal(1, fenced.Total);

        // Leave the resumed owner as the only backend: the session must come back to it with the new owner's state.
        await AdminAsync("undrain", owner);
        foreach (var other in _cluster.Backends.Where(b => b != owner))
        {
            await other.KillAsync();
        }

        await Eventually.TrueAsync(
            () => cluster.DestinationsState.AvailableDestinations.Select(d => d.DestinationId).SequenceEqual([owner.InstanceId]),
            TimeSpan.FromSeconds(20),
            "the resumed owner should be the only available backend");

        var back = await ReadCartAsync(client);
        Assert.Equal(owner.InstanceId, back.Instance);
        Assert.Equal(["first", "moved"], Skus(back));
        var after = await AddAsync(client, "after");
        Assert.Equal(owner.InstanceId, after.Instance);
        Assert.Equal(["first", "moved", "after"], Skus(after));

        var stored = StoredSessions.FromJournal(_cluster.Gateway.JournalPath, sid)!;
        Assert.Equal(3, stored.Version);
        Assert.Equal(["first", "moved", "after"], JsonSerializer.Deserialize<List<CartItem>>(stored.Values["cart"], JsonSerializerOptions.Web)!.Select(i => i.Sku));
        Assert.Equal(1, fenced.Total);
    }

    private static List<string> Skus(CartAnswer cart) => [.. cart.Items.Select(i => i.Sku)];

    private static async Task<CartAnswer> AddAsync(HttpClient client, string sku)
    {
        using var response = await client.PostAsJsonAsync(new Uri("/cart/items", UriKind.Relative), new CartItem(sku, 1));
        Assert.True(response.IsSuccessStatusCode, $"POST /cart/items answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<CartAnswer>(JsonSerializerOptions.Web))!;
    }

    private static async Task<CartAnswer> ReadCartAsync(HttpClient client)
    {
        using var response = await client.GetAsync(new Uri("/cart", UriKind.Relative));
        Assert.True(response.IsSuccessStatusCode, $"GET /cart answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<CartAnswer>(JsonSerializerOptions.Web))!;
    }

    private async Task AdminAsync(string action, BackendProcess backend)
    {
        using var admin = _cluster.Gateway.NewRawClient();
        admin.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
        using var answer = await admin.PostAsync(new Uri($"/_baton/admin/clusters/demo/destinations/{backend.InstanceId}/{action}", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
    }
}
