using System.Collections.Concurrent;
using System.Net;
using Baton.LoadTest;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Failover;

/// <summary>Backends in their own processes (the core cases with each kind of demo backend), killed, paused and restarted for real, behind a real gateway and Redis.</summary>
[Trait("Category", "Functional")]
public sealed class FailoverTests
{
    private static readonly string[] GatewaySettings =
    [
        "--ReverseProxy:Clusters:demo:HttpRequest:ActivityTimeout=00:00:02",
        "--ReverseProxy:Clusters:demo:HealthCheck:Active:Interval=00:00:01",
        "--Baton:Failover:NoDestinationWait=00:00:03",
        $"--Baton:Failover:MaxBufferedRequestBytes={ResendBuffer}",
        $"--Baton:Admin:Token={AdminToken}",
    ];

    private const string AdminToken = "admin-token-0123456789abcdef0123456789abcdef";
    private const int ResendBuffer = 256 * 1024;

    private static Task<ProcessCluster> StartAsync(BackendKind kind) => ProcessCluster.StartAsync(GatewaySettings, kind: kind);

    [Theory]
    [MemberData(nameof(BackendKinds.All), MemberType = typeof(BackendKinds))]
    public async Task KillingThePinnedBackendBetweenRequests_TheNextRequestAnswersFromAnotherInstance_WithTheCountContinuing(BackendKind kind)
    {
        await using var cluster = await StartAsync(kind);
        using var client = cluster.Gateway.NewClient();
        await client.IncrementAsync();
        var before = await client.IncrementAsync();

        await cluster.Backend(before.Instance).KillAsync();
        var after = await client.IncrementAsync();

        Assert.Equal(3, after.Count);
        Assert.NotEqual(before.Instance, after.Instance);
        Assert.Equal(4, (await client.IncrementAsync()).Count);
    }

    [Theory]
    [MemberData(nameof(BackendKinds.All), MemberType = typeof(BackendKinds))]
    public async Task AHundredSessionsUnderLoad_WhenABackendIsKilled_GetNoErrorAndLoseNothing(BackendKind kind)
    {
        await using var cluster = await StartAsync(kind);
        const int Sessions = 100;
        const int Increments = 8;
        var clients = Enumerable.Range(0, Sessions).Select(_ => cluster.Gateway.NewClient()).ToList();
        var failures = new ConcurrentBag<string>();
        var done = 0;
        var victim = cluster.Backends[1];
        var kill = Task.Run(async () =>
        {
            await Eventually.TrueAsync(() => Volatile.Read(ref done) >= Sessions * Increments / 3, TimeSpan.FromSeconds(60));
            await victim.KillAsync();
        });

        await Parallel.ForEachAsync(clients, new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (client, cancellationToken) =>
        {
            for (var i = 1; i <= Increments; i++)
            {
                // Each increment carries an Idempotency-Key, as a client that wants retries does: a POST caught in
                // flight by the kill may be resent. (Without one it is answered 502; see the test below.)
                using var request = new HttpRequestMessage(HttpMethod.Post, "/counter");
                request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
                using var response = await client.SendAsync(request, cancellationToken);
                var body = await response.Content.ReadAsStringAsync(cancellationToken);
                if (!response.IsSuccessStatusCode || !body.Contains($"\"count\":{i},", StringComparison.Ordinal))
                {
                    failures.Add($"expected {i}: {(int)response.StatusCode} {body}");
                }

                Interlocked.Increment(ref done);
            }
        });
        await kill;

        Assert.True(failures.IsEmpty, string.Join(Environment.NewLine, failures.Take(12)));
        foreach (var client in clients)
        {
            Assert.Equal(Increments, (await client.ReadCounterAsync()).Count);
            client.Dispose();
        }
    }

    [Theory]
    [MemberData(nameof(BackendKinds.All), MemberType = typeof(BackendKinds))]
    public async Task TwentyConcurrentRequestsOfOneSession_WhenItsBackendDies_RestoreItOnce_AndAllAreAnswered(BackendKind kind)
    {
        await using var cluster = await StartAsync(kind);
        using var client = cluster.Gateway.NewClient();
        for (var i = 0; i < 5; i++)
        {
            await client.IncrementAsync();
        }

        var owner = (await client.ReadCounterAsync()).Instance;
        using var restores = new InstrumentCounter(cluster.Gateway, "baton.restore.count", "baton.outcome", "ok");
        await cluster.Backend(owner).KillAsync();

        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => client.IncrementAsync()));

        Assert.Equal(Enumerable.Range(6, 20), answers.Select(a => a.Count).Order());
        Assert.Equal(25, (await client.ReadCounterAsync()).Count);
        Assert.Equal(1, restores.Total);
    }

    [Theory]
    [MemberData(nameof(BackendKinds.All), MemberType = typeof(BackendKinds))]
    public async Task APausedBackend_LosesItsSessionsWithinTheAttemptTimeout_AndAfterResumingServesNoneOfThemStale(BackendKind kind)
    {
        await using var cluster = await StartAsync(kind);
        using var client = cluster.Gateway.NewClient();
        await client.IncrementAsync();
        var owner = cluster.Backend((await client.IncrementAsync()).Instance);

        owner.Pause();
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var moved = await client.ReadCounterAsync();
        var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);

        // The attempt timeout is 2 s here (ActivityTimeout): one attempt, a move and a restore fit well within 2 s + 3 s.
        Assert.True(took < TimeSpan.FromSeconds(2 + 3), $"the paused backend's session moved only after {took}");
        Assert.Equal(2, moved.Count);
        Assert.NotEqual(owner.InstanceId, moved.Instance);
        Assert.Equal(3, (await client.IncrementAsync()).Count);

        owner.Resume();

        // Leave the resumed backend as the only one: the session must come back to it restored, not stale. It
        // takes requests again once the health checks have seen it answer (there is no panic mode).
        foreach (var other in cluster.Backends.Where(b => b != owner))
        {
            await other.KillAsync();
        }

        Assert.True(cluster.Gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>().TryGetCluster("demo", out var proxied));
        await Eventually.TrueAsync(
            () => proxied.DestinationsState.AvailableDestinations.Any(d => d.DestinationId == owner.InstanceId),
            TimeSpan.FromSeconds(20),
            "the resumed backend should be available again");
        var back = await client.IncrementAsync();
        Assert.Equal(owner.InstanceId, back.Instance);
        Assert.Equal(4, back.Count);
    }

    [Theory]
    [MemberData(nameof(BackendKinds.All), MemberType = typeof(BackendKinds))]
    public async Task ABackendRestartedOnTheSamePort_NeverServesASessionFromItsEmptyMemory(BackendKind kind)
    {
        await using var cluster = await StartAsync(kind);
        using var client = cluster.Gateway.NewClient();
        for (var i = 0; i < 3; i++)
        {
            await client.IncrementAsync();
        }

        var owner = cluster.Backend((await client.ReadCounterAsync()).Instance);
        await owner.KillAsync();
        await owner.StartAsync();

        Assert.Equal(4, (await client.IncrementAsync()).Count);
        Assert.Equal(5, (await client.IncrementAsync()).Count);
    }

    [Fact]
    public async Task WithEveryBackendKilled_TheAnswerIs503WithRetryAfter_NoLaterThanTheWait_AndSessionsResumeWhenOneReturns()
    {
        await using var cluster = await StartAsync(BackendKind.Dotnet);
        using var client = cluster.Gateway.NewClient();
        await client.IncrementAsync();
        await client.IncrementAsync();
        foreach (var backend in cluster.Backends)
        {
            await backend.KillAsync();
        }

        var started = DateTime.UtcNow;
        using var refused = await client.PostAsync(new Uri("/counter", UriKind.Relative), null);
        var waited = DateTime.UtcNow - started;

        // Every attempt is refused at once (nothing listens): the answer comes after the wait for a healthy backend, or
        // sooner once the attempts are used up — whichever the health checks make first. So only the upper bound holds
        // here; the lower one (no 503 before the wait) is the paused case below.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        var reason = await refused.Content.ReadAsStringAsync();
        Assert.True(reason.StartsWith("No healthy backend is available", StringComparison.Ordinal) || reason.StartsWith("No backend could answer this request", StringComparison.Ordinal), reason);
        Assert.True(waited < TimeSpan.FromSeconds(3 + 5), $"answered after {waited}, bound is NoDestinationWait (3 s) plus margin");

        await cluster.Backends[2].StartAsync();
        await Eventually.TrueAsync(async () =>
        {
            using var response = await client.GetAsync(new Uri("/counter", UriKind.Relative));
            return response.IsSuccessStatusCode;
        }, TimeSpan.FromSeconds(20), "a returning backend should take the session");
        Assert.Equal(3, (await client.IncrementAsync()).Count);
    }

    [Fact]
    public async Task WithEveryBackendPaused_SixHundredSessionsAtOnce_EachGet503WithRetryAfter_WithinTheWaitAndNoSooner()
    {
        await using var cluster = await StartAsync(BackendKind.Dotnet);
        var clients = Enumerable.Range(0, 600).Select(_ => cluster.Gateway.NewClient()).ToList();
        await Parallel.ForEachAsync(clients, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (client, _) => await client.IncrementAsync());
        Assert.True(cluster.Gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>().TryGetCluster("demo", out var proxied));
        foreach (var backend in cluster.Backends)
        {
            backend.Pause();
        }

        try
        {
            // Active health checks (every second here) find every backend unresponsive.
            await Eventually.TrueAsync(() => proxied.DestinationsState.AvailableDestinations.Count == 0, TimeSpan.FromSeconds(20), "every destination should be marked down");

            var answers = await Task.WhenAll(clients.Select(async client =>
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                using var response = await client.PostAsync(new Uri("/counter", UriKind.Relative), null);
                return (response.StatusCode, RetryAfter: response.Headers.RetryAfter is not null, Took: System.Diagnostics.Stopwatch.GetElapsedTime(started));
            }));

            Assert.All(answers, a => Assert.Equal((HttpStatusCode.ServiceUnavailable, true), (a.StatusCode, a.RetryAfter)));

            // NoDestinationWait is 3 s: no session waits behind another's wait, and none is refused before it waited.
            var slowest = answers.Max(a => a.Took);
            var fastest = answers.Min(a => a.Took);
            Assert.True(slowest < TimeSpan.FromSeconds(3 + 2), $"slowest 503 after {slowest}");
            Assert.True(fastest > TimeSpan.FromSeconds(3 - 0.2), $"fastest 503 after {fastest}");
        }
        finally
        {
            foreach (var backend in cluster.Backends)
            {
                backend.Resume();
            }

            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    [Fact]
    public async Task TheOwnerDeadAndEveryOtherBackendHung_ARequestGets503WithinOneWait_ForAllItsAttemptsAndRestores()
    {
        await using var cluster = await StartAsync(BackendKind.Dotnet);
        using var client = cluster.Gateway.NewClient();
        await client.IncrementAsync();
        var owner = cluster.Backend((await client.IncrementAsync()).Instance);
        var others = cluster.Backends.Where(b => b != owner).ToList();
        await owner.KillAsync();
        foreach (var other in others)
        {
            other.Pause();
        }

        try
        {
            // Attempts fail on the dead owner, restores hang on the paused ones: NoDestinationWait (3 s) bounds them all.
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            using var refused = await client.GetAsync(new Uri("/counter", UriKind.Relative));
            var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);

            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.NotNull(refused.Headers.RetryAfter);
            Assert.True(took < TimeSpan.FromSeconds(3 + 2), $"answered after {took}");
        }
        finally
        {
            foreach (var other in others)
            {
                other.Resume();
            }
        }
    }

    [Fact]
    public async Task APostThatMayHaveBeenProcessed_IsNotResent_UnlessItCarriesAnIdempotencyKey()
    {
        await using var cluster = await StartAsync(BackendKind.Dotnet);
        using var client = cluster.Gateway.NewClient();
        await client.IncrementAsync();
        var owner = cluster.Backend((await client.ReadCounterAsync()).Instance);

        owner.Pause();
        using var plain = await client.PostAsync(new Uri("/counter", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.BadGateway, plain.StatusCode);
        Assert.Contains("not resent", await plain.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The session already moved: the next POST is applied once, on top of the checkpoint.
        using var keyed = new HttpRequestMessage(HttpMethod.Post, "/counter");
        keyed.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
        using var answered = await client.SendAsync(keyed);
        Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        Assert.Contains("\"count\":2,", await answered.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        owner.Resume();
    }

    [Fact]
    public async Task AChunkedPostToASessionWhoseBackendDied_IsResentWithItsWholeBody()
    {
        await using var cluster = await StartAsync(BackendKind.Dotnet);
        using var client = cluster.Gateway.NewClient();
        await client.IncrementAsync();
        await cluster.Backend((await client.ReadCounterAsync()).Instance).KillAsync();

        // No Content-Length: the gateway keeps the body (under Baton:Failover:MaxBufferedRequestBytes) to send it again.
        var body = System.Security.Cryptography.RandomNumberGenerator.GetBytes(ResendBuffer / 2);
        var stored = await UploadChunkedAsync(client, body);
        Assert.Equal(Sha256(body), stored.Sha256);
        Assert.Equal(2, (await client.IncrementAsync()).Count);
    }

    [Fact]
    public async Task AChunkedPostLargerThanTheResendBuffer_StillReachesTheBackendWhole()
    {
        await using var cluster = await StartAsync(BackendKind.Dotnet);
        using var client = cluster.Gateway.NewClient();
        await client.IncrementAsync();

        // Past the buffer the gateway forwards what it read, then the rest as it arrives: byte for byte, in order.
        var body = System.Security.Cryptography.RandomNumberGenerator.GetBytes(ResendBuffer + 40_000);
        var stored = await UploadChunkedAsync(client, body);
        Assert.Equal((Sha256(body), body.Length), (stored.Sha256, stored.Bytes));
    }

    [Theory]
    [MemberData(nameof(BackendKinds.All), MemberType = typeof(BackendKinds))]
    public async Task ARollingRestartOfEveryBackendThroughDrain_LosesNothing_AndAnswersEveryRequest(BackendKind kind)
    {
        await using var cluster = await StartAsync(kind);
        var clients = Enumerable.Range(0, 30).Select(_ => cluster.Gateway.NewClient()).ToList();
        var expected = new int[clients.Count];
        async Task IncrementAllAsync()
        {
            for (var i = 0; i < clients.Count; i++)
            {
                Assert.Equal(++expected[i], (await clients[i].IncrementAsync()).Count);
            }
        }

        await IncrementAllAsync();
        using var admin = new HttpClient { BaseAddress = cluster.Gateway.Address };
        admin.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminToken);
        foreach (var backend in cluster.Backends)
        {
            using (var drained = await admin.PostAsync(new Uri($"/_baton/admin/clusters/demo/destinations/{backend.InstanceId}/drain", UriKind.Relative), null))
            {
                Assert.Equal(HttpStatusCode.OK, drained.StatusCode);
            }

            // Every session's next request moves it off the draining backend, state and all.
            await IncrementAllAsync();
            foreach (var client in clients)
            {
                Assert.NotEqual(backend.InstanceId, (await client.ReadCounterAsync()).Instance);
            }

            await backend.KillAsync();
            await backend.StartAsync();
            using (var undrained = await admin.PostAsync(new Uri($"/_baton/admin/clusters/demo/destinations/{backend.InstanceId}/undrain", UriKind.Relative), null))
            {
                Assert.Equal(HttpStatusCode.OK, undrained.StatusCode);
            }

            await IncrementAllAsync();
        }

        foreach (var client in clients)
        {
            client.Dispose();
        }
    }

    // The body sent with Transfer-Encoding: chunked (a stream of unknown length) as the session's blob.
    private static async Task<BlobAnswer> UploadChunkedAsync(HttpClient client, byte[] body)
    {
        using var content = new StreamContent(new UnknownLengthStream(body));
        using var answer = await client.PostAsync(new Uri("/blob", UriKind.Relative), content);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        return (await System.Net.Http.Json.HttpContentJsonExtensions.ReadFromJsonAsync<BlobAnswer>(answer.Content, System.Text.Json.JsonSerializerOptions.Web))!;
    }

    private static string Sha256(byte[] data) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data));

    private sealed class UnknownLengthStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
