using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Operations;

/// <summary>
/// What operators see — the status page (in a real headless Chromium), its JSON, readiness and the traces —
/// while a backend is killed for real and Redis dies.
/// </summary>
[Trait("Category", "Functional")]
public sealed partial class StatusAndTelemetryTests : IAsyncLifetime
{
    private ProcessCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await ProcessCluster.StartAsync(["--Baton:Store:RedisCheckInterval=00:00:00.200"]);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task StatusJson_ShowsEveryDestinationAndTheStore_AndAKilledBackendsSessionsMovingAway()
    {
        var clients = Enumerable.Range(0, 9).Select(_ => _cluster.Gateway.NewClient()).ToList();
        var owners = new List<string>();
        foreach (var client in clients)
        {
            owners.Add((await client.IncrementAsync()).Instance);
        }

        var status = await StatusAsync();
        var destinations = status.GetProperty("clusters")[0].GetProperty("destinations").EnumerateArray().ToList();
        Assert.Equal(["b1", "b2", "b3"], destinations.Select(d => d.GetProperty("id").GetString()));
        Assert.Equal(clients.Count, destinations.Sum(d => d.GetProperty("sessions").GetInt32()));
        Assert.True(status.GetProperty("ready").GetBoolean());
        Assert.True(status.GetProperty("store").GetProperty("redis").GetProperty("connected").GetBoolean());
        Assert.NotNull(status.GetProperty("store").GetProperty("journal").GetProperty("last_commit").GetString());

        var victim = owners[0];
        await Backend(victim).KillAsync();
        foreach (var client in clients)
        {
            await client.IncrementAsync();
        }

        status = await StatusAsync();
        var dead = status.GetProperty("clusters")[0].GetProperty("destinations").EnumerateArray().Single(d => d.GetProperty("id").GetString() == victim);
        Assert.False(dead.GetProperty("available").GetBoolean());
        Assert.Equal(0, dead.GetProperty("sessions").GetInt32());
        Assert.Equal(owners.Count(o => o == victim), dead.GetProperty("failovers_5m").GetInt32());
        Assert.Contains(status.GetProperty("recent_failovers").EnumerateArray(), e => e.GetProperty("from").GetString() == victim);
    }

    [Fact]
    public async Task TheStatusPageInChromium_ShowsThreeDestinations_AndReflectsABackendKill()
    {
        using var client = _cluster.Gateway.NewClient();
        var owner = (await client.IncrementAsync()).Instance;
        var page = new Uri(_cluster.Gateway.Address, "/_baton/status");

        var before = Rows(await Chromium.DumpDomAsync(page));
        Assert.Equal(["b1", "b2", "b3"], before.Keys.Order());
        Assert.All(before.Values, row => Assert.Contains("class=\"available up\">yes<", row, StringComparison.Ordinal));

        await Backend(owner).KillAsync();
        Assert.Equal(2, (await client.IncrementAsync()).Count);

        var dom = await Chromium.DumpDomAsync(page);
        var after = Rows(dom);
        Assert.Contains("class=\"available down\">no<", after[owner], StringComparison.Ordinal);
        Assert.Contains($"<td class=\"from\">{owner}</td>", dom, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFailedOverRequest_IsOneTrace_WithTheFailoverAndRestoreSpans_JoinedToTheProxysActivity()
    {
        var stopped = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "Baton" or "Yarp.ReverseProxy" or "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Add,
        };
        ActivitySource.AddActivityListener(listener);

        using var client = _cluster.Gateway.NewClient();
        var owner = (await client.IncrementAsync()).Instance;
        await Backend(owner).KillAsync();

        var traceId = ActivityTraceId.CreateRandom();
        var sentAt = DateTime.UtcNow;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/counter");
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
        using var answer = await client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);

        await Eventually.TrueAsync(() => stopped.Any(a => a.TraceId == traceId && a.OperationName == "baton.failover"), TimeSpan.FromSeconds(10), "the failover span should end");
        var trace = stopped.Where(a => a.TraceId == traceId).ToList();
        var failover = trace.Single(a => a.OperationName == "baton.failover");
        var restore = trace.Single(a => a.OperationName == "baton.restore");
        Assert.Equal(failover.SpanId, restore.ParentSpanId);
        Assert.Equal(owner, failover.GetTagItem("baton.destination"));
        Assert.NotEqual(owner, restore.GetTagItem("baton.destination"));
        Assert.Contains(trace, a => a.Source.Name == "Yarp.ReverseProxy");
        Assert.Contains(trace, a => a.OperationName == "baton.checkpoint");

        // Every span of this session's failed-over request is in the client's trace: none started a trace of its own.
        var sessionHash = Baton.Gateway.Sessions.SessionId.TryParse(SessionCookies.SessionIdOf(client, _cluster.Gateway), out var session) ? session.Hash : null;
        var sessionSpans = stopped.Where(a => a.StartTimeUtc >= sentAt && (string?)a.GetTagItem("baton.session") == sessionHash).ToList();
        Assert.Contains(sessionSpans, a => a.OperationName == "baton.restore");
        Assert.All(sessionSpans, a => Assert.Equal(traceId, a.TraceId));
    }

    [Fact]
    public async Task WithRedisDown_TheGatewayStaysReady_AsDegraded()
    {
        using var client = new HttpClient { BaseAddress = _cluster.Gateway.Address };
        Assert.Equal("Healthy", await client.GetStringAsync(new Uri("/_baton/ready", UriKind.Relative)));

        await _cluster.Redis.KillAsync();
        await Eventually.TrueAsync(
            async () =>
            {
                using var ready = await client.GetAsync(new Uri("/_baton/ready", UriKind.Relative));
                return ready.StatusCode == HttpStatusCode.OK && await ready.Content.ReadAsStringAsync() == "Degraded";
            },
            TimeSpan.FromSeconds(10),
            "readiness should stay 200, reporting Degraded");
    }

    private BackendProcess Backend(string instance) => _cluster.Backend(instance);

    private async Task<JsonElement> StatusAsync()
    {
        using var client = new HttpClient { BaseAddress = _cluster.Gateway.Address };
        using var document = JsonDocument.Parse(await client.GetStringAsync(new Uri("/_baton/status.json", UriKind.Relative)));
        return document.RootElement.Clone();
    }

    private static Dictionary<string, string> Rows(string dom)
        => RowPattern().Matches(dom).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value, StringComparer.Ordinal);

    [GeneratedRegex("<tr data-destination=\"([^\"]+)\">(.*?)</tr>", RegexOptions.Singleline)]
    private static partial Regex RowPattern();
}
