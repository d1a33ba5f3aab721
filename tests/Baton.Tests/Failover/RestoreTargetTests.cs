using System.Net;
using System.Text.Json;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace Baton.Tests.Failover;

/// <summary>
/// Where a failed-over session's restore goes when the first target will not take it: a target that refuses
/// the restore, one whose restore hangs past <c>RestoreTimeout</c>, and one already running its
/// <c>MaxConcurrentRestoresPerDestination</c> are each skipped for the next, and the session lands there
/// with its state. Real DemoBackends: b1 owns the sessions and is stopped; b2 is the target under test, made
/// the first choice (least busy) by a request held open on b3, the good one.
/// </summary>
[Trait("Category", "Functional")]
public sealed class RestoreTargetTests : IAsyncLifetime, IDisposable
{
    private const string OtherSecret = "another-secret-0123456789abcdef0123456789abcdef";
    private const string AdminToken = "admin-token-0123456789abcdef0123456789abcdef";
    private const string Busy = "/busy";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan AbortSeen = TimeSpan.FromMilliseconds(500);

    private readonly List<TestBackend> _backends = [];
    private readonly List<HttpClient> _clients = [];
    private readonly LogCapture _logs = new();
    private readonly TaskCompletionSource _busyStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _releaseBusy = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _restoreArrived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _restoreAbandoned = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TestGateway? _gateway;
    private HttpClient? _busyClient;
    private Task<HttpResponseMessage>? _busyRequest;
    private volatile bool _holdRestores;
    private int _restoresArrived;
    private int _restoresRunning;
    private int _mostRestoresAtOnce;

    private TestGateway Gateway => _gateway!;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _releaseBusy.TrySetResult();
        if (_busyRequest is not null)
        {
            try
            {
                (await _busyRequest.WaitAsync(Deadline)).Dispose();
            }
            catch (Exception ex) when (ex is HttpRequestException or TimeoutException or TaskCanceledException)
            {
                // Only cleanup: the test has already passed or failed on its own assertions.
            }
        }

        _busyClient?.Dispose();
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }

        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    public void Dispose() => _logs.Dispose();

    [Fact]
    public async Task ATargetThatRefusesTheRestore_IsSkipped_AndTheSessionLandsOnTheNextWithItsState()
    {
        // b2 has another secret: it refuses every restore (401), and still counts as available.
        var clients = await StartAsync(sessions: 1, targetArgs: [$"--Baton:Secret={OtherSecret}"], targetRestoreCheck: "refused 401");
        using var failed = new InstrumentCounter(Gateway, "baton.restore.count", "baton.outcome", "failed");

        var answer = await clients[0].ReadCounterAsync();

        Assert.Equal(new CounterAnswer(2, "b3"), answer);
        Assert.Equal(1, failed.Total);
        Assert.Single(_logs.Lines, l => l.Contains("[4004]", StringComparison.Ordinal) && l.Contains("'b2'", StringComparison.Ordinal));
        Assert.Equal(3, (await clients[0].IncrementAsync()).Count);
    }

    [Fact]
    public async Task ATargetWhoseRestoreHangs_IsGivenUpAfterTheRestoreTimeout_AndTheSessionLandsOnTheNextWithItsState()
    {
        // The request's own wait (NoDestinationWait, 10 s) is far longer: only the restore's timeout can end it in time.
        var clients = await StartAsync(sessions: 1, gatewayArgs: ["--Baton:Failover:RestoreTimeout=00:00:01"]);
        _holdRestores = true;

        var answer = await clients[0].ReadCounterAsync();

        Assert.Equal(new CounterAnswer(2, "b3"), answer);
        Assert.True(_restoreArrived.Task.IsCompleted, "the restore should have been sent to b2 first");
        await _restoreAbandoned.Task.WaitAsync(Deadline);
        Assert.Single(_logs.Lines, l => l.Contains("[4004]", StringComparison.Ordinal) && l.Contains("'b2'", StringComparison.Ordinal));
        Assert.Equal(3, (await clients[0].IncrementAsync()).Count);
    }

    [Fact]
    public async Task WithOneRestoreSlotPerTarget_TwoSessionsMovingAtOnce_NeverRestoreTogetherThere_AndBothLandWithTheirState()
    {
        // Each restore b2 receives hangs; a second restore for b2 waits for the slot, within the same RestoreTimeout.
        var clients = await StartAsync(sessions: 2, gatewayArgs: ["--Baton:Failover:RestoreTimeout=00:00:01", "--Baton:Failover:MaxConcurrentRestoresPerDestination=1"]);
        _holdRestores = true;

        var answers = await Task.WhenAll(clients.Select(c => c.ReadCounterAsync()));

        Assert.All(answers, a => Assert.Equal(new CounterAnswer(2, "b3"), a));
        Assert.True(Volatile.Read(ref _restoresArrived) >= 1, "the restores should have been sent to b2 first");
        Assert.Equal(1, Volatile.Read(ref _mostRestoresAtOnce));
        foreach (var client in clients)
        {
            Assert.Equal(3, (await client.IncrementAsync()).Count);
        }
    }

    /// <summary>
    /// Starts b1, b2 (the target under test) and b3, and a gateway; pins <paramref name="sessions"/> sessions on b1
    /// (each counted to 2) and one on b3 whose request is held open there, so b2 is the least busy target; then
    /// stops b1. Returns the clients of the b1 sessions.
    /// </summary>
    private async Task<List<HttpClient>> StartAsync(int sessions, string[]? targetArgs = null, string[]? gatewayArgs = null, string targetRestoreCheck = "accepted")
    {
        _backends.Add(await TestBackend.StartAsync("b1"));
        _backends.Add(await TestBackend.StartAsync("b2", targetArgs ?? [], BackendHook.Before(HoldRestoresAsync)));
        _backends.Add(await TestBackend.StartAsync("b3", [], BackendHook.Before(HoldBusyAsync)));
        _gateway = await TestGateway.StartAsync(
            _backends,
            [
                // No probe marks b1 down: the sessions' own requests find it gone. Held requests outlast no attempt timeout.
                "--ReverseProxy:Clusters:demo:HealthCheck:Active:Enabled=false",
                "--ReverseProxy:Clusters:demo:HttpRequest:ActivityTimeout=00:00:30",
                $"--Baton:Admin:Token={AdminToken}",
                .. gatewayArgs ?? [],
            ],
            _logs.AttachTo);

        using var status = Gateway.NewRawClient();
        await Eventually.TrueAsync(
            async () => await RestoreCheckOfAsync(status, "b1") == "accepted" && await RestoreCheckOfAsync(status, "b2") == targetRestoreCheck && await RestoreCheckOfAsync(status, "b3") == "accepted",
            Deadline,
            "every backend's restore channel should be checked before the test holds any restore");

        // Draining steers new sessions: b1 alone takes the sessions under test, b3 alone the busy one.
        using var admin = Gateway.NewRawClient();
        admin.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
        await DrainAsync(admin, "b2", "b3");
        var clients = new List<HttpClient>();
        for (var i = 0; i < sessions; i++)
        {
            var client = Gateway.NewClient();
            _clients.Add(client);
            clients.Add(client);
            await client.IncrementAsync();
            Assert.Equal(new CounterAnswer(2, "b1"), await client.IncrementAsync());
        }

        await UndrainAsync(admin, "b3");
        await DrainAsync(admin, "b1");
        _busyClient = Gateway.NewClient();
        Assert.Equal("b3", (await _busyClient.IncrementAsync()).Instance);
        await UndrainAsync(admin, "b1", "b2");

        _busyRequest = _busyClient.GetAsync(new Uri(Busy, UriKind.Relative));
        await _busyStarted.Task.WaitAsync(Deadline);

        var b1 = _backends[0];
        _backends.Remove(b1);
        await b1.DisposeAsync();
        return clients;
    }

    private async Task HoldRestoresAsync(HttpContext context, RequestDelegate next)
    {
        if (!_holdRestores || !HttpMethods.IsPost(context.Request.Method) || context.Request.Path != Baton.Protocol.ProtocolConstants.RestorePath)
        {
            await next(context);
            return;
        }

        Interlocked.Increment(ref _restoresArrived);

        // A restore the gateway gave up is over for the gateway at once, but this backend sees its connection
        // close a moment later: one still counted as running when the next arrives is given that moment to go.
        // A restore sent beside another (no slot) finds it running for its whole RestoreTimeout.
        var arrived = System.Diagnostics.Stopwatch.GetTimestamp();
        while (Volatile.Read(ref _restoresRunning) > 0 && System.Diagnostics.Stopwatch.GetElapsedTime(arrived) < AbortSeen)
        {
            await Task.Delay(10);
        }

        var running = Interlocked.Increment(ref _restoresRunning);
        InterlockedMax(ref _mostRestoresAtOnce, running);
        _restoreArrived.TrySetResult();
        try
        {
            await Task.Delay(Timeout.Infinite, context.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            _restoreAbandoned.TrySetResult();
        }
        finally
        {
            Interlocked.Decrement(ref _restoresRunning);
        }
    }

    private async Task HoldBusyAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Request.Path != Busy)
        {
            await next(context);
            return;
        }

        _busyStarted.TrySetResult();
        await _releaseBusy.Task.WaitAsync(context.RequestAborted);
        await context.Response.WriteAsync("done", context.RequestAborted);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var seen = Volatile.Read(ref target);
        while (value > seen)
        {
            var previous = Interlocked.CompareExchange(ref target, value, seen);
            if (previous == seen)
            {
                return;
            }

            seen = previous;
        }
    }

    private static async Task DrainAsync(HttpClient admin, params string[] destinations)
    {
        foreach (var destination in destinations)
        {
            using var answer = await admin.PostAsync(new Uri($"/_baton/admin/clusters/demo/destinations/{destination}/drain", UriKind.Relative), null);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        }
    }

    private static async Task UndrainAsync(HttpClient admin, params string[] destinations)
    {
        foreach (var destination in destinations)
        {
            using var answer = await admin.PostAsync(new Uri($"/_baton/admin/clusters/demo/destinations/{destination}/undrain", UriKind.Relative), null);
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        }
    }

    private static async Task<string?> RestoreCheckOfAsync(HttpClient client, string destination)
    {
        using var document = JsonDocument.Parse(await client.GetStringAsync(new Uri("/_baton/status.json", UriKind.Relative)));
        return document.RootElement.GetProperty("clusters").EnumerateArray().Single(c => c.GetProperty("id").GetString() == "demo")
            .GetProperty("destinations").EnumerateArray().Single(d => d.GetProperty("id").GetString() == destination)
            .GetProperty("restore_check").GetString();
    }
}
