using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Baton.Tests.Failover;

/// <summary>
/// An owner the session moved away from can delay it, never overwrite it: a change it makes after the move
/// is fenced by the session's epoch — never stored, never answered as a success. Real backend processes
/// paused and resumed (SIGSTOP/SIGCONT), real Redis, a real gateway.
/// </summary>
[Trait("Category", "Functional")]
public sealed class FencingTests : IAsyncLifetime
{
    private const string AdminToken = "admin-token-0123456789abcdef0123456789abcdef";

    private ProcessCluster _cluster = null!;

    public enum Move
    {
        Drain,
        PassiveMarkDown,
    }

    // A long attempt timeout: the paused owner's request waits for it instead of being failed over. No active health
    // checks: a probe of the paused owner would mark it down and move the session before the late request reaches it.
    public async Task InitializeAsync() => _cluster = await ProcessCluster.StartAsync(
    [
        "--ReverseProxy:Clusters:demo:HttpRequest:ActivityTimeout=00:01:00",
        "--ReverseProxy:Clusters:demo:HealthCheck:Active:Enabled=false",
        $"--Baton:Admin:Token={AdminToken}",
    ]);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Theory]
    [InlineData(Move.Drain, false)]
    [InlineData(Move.Drain, true)]
    [InlineData(Move.PassiveMarkDown, false)]
    public async Task ASessionMovedWhileItsOldOwnerStillRunsARequest_KeepsEveryChangeAnswered200_AndNoneAnsweredOtherwise(Move move, bool idempotencyKey)
    {
        using var client = _cluster.Gateway.NewClient();
        await client.IncrementAsync();
        var before = await client.IncrementAsync();
        var owner = _cluster.Backend(before.Instance);
        Assert.True(_cluster.Gateway.Services.GetRequiredService<IProxyStateLookup>().TryGetCluster("demo", out var cluster));

        owner.Pause();
        Task<HttpResponseMessage> late;
        try
        {
            late = PostCounterAsync(client, idempotencyKey);
            // Forwarded to the owner (not merely accepted by the gateway, which could still route it after the move).
            await Eventually.TrueAsync(() => cluster.Destinations[owner.InstanceId].ConcurrentRequestCount >= 1, TimeSpan.FromSeconds(10), "the gateway should forward the request to the paused owner");
            await MoveAwayAsync(owner, move);
            var moved = await client.IncrementAsync();
            Assert.Equal(3, moved.Count);
            Assert.NotEqual(owner.InstanceId, moved.Instance);
        }
        finally
        {
            owner.Resume();
        }

        using var answer = await late;
        var counted = answer.IsSuccessStatusCode ? 1 : 0;
        if (idempotencyKey)
        {
            // Resent to the current owner, where it counts once.
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            Assert.Equal(4, (await answer.Content.ReadFromJsonAsync<CounterAnswer>(JsonSerializerOptions.Web))!.Count);
        }
        else
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
            Assert.Contains("nothing was changed", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(3 + counted, (await client.ReadCounterAsync()).Count);
        Assert.Equal(4 + counted, (await client.IncrementAsync()).Count);
    }

    private static Task<HttpResponseMessage> PostCounterAsync(HttpClient client, bool idempotencyKey)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/counter");
        if (idempotencyKey)
        {
            request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        }

        return client.SendAsync(request);
    }

    private async Task MoveAwayAsync(BackendProcess owner, Move move)
    {
        if (move == Move.Drain)
        {
            using var admin = _cluster.Gateway.NewRawClient();
            admin.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
            using var drained = await admin.PostAsync(new Uri($"/_baton/admin/clusters/demo/destinations/{owner.InstanceId}/drain", UriKind.Relative), null);
            Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
            return;
        }

        var services = _cluster.Gateway.Services;
        Assert.True(services.GetRequiredService<IProxyStateLookup>().TryGetCluster("demo", out var cluster));
        var destination = cluster.Destinations[owner.InstanceId];
        services.GetRequiredService<IDestinationHealthUpdater>().SetPassive(cluster, destination, DestinationHealth.Unhealthy, TimeSpan.FromMinutes(1));

        // The proxy recomputes the cluster's available destinations after a health change: the next request must see it.
        await Eventually.TrueAsync(() => !cluster.DestinationsState.AvailableDestinations.Contains(destination), TimeSpan.FromSeconds(10), "the owner should leave the available destinations");
    }
}
