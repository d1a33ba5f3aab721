using System.Net;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Baton.Tests.Checkpoints;

/// <summary>Limits, expiry and restarts, each on a gateway of its own over a real Redis and journal.</summary>
[Trait("Category", "Functional")]
public sealed class SessionLifecycleTests : IAsyncLifetime
{
    private const string LockTimeout = "--Baton:Journal:LockTimeout=00:00:01";
    private readonly RedisServer _redis = new();

    public Task InitializeAsync() => _redis.InitializeAsync();

    public Task DisposeAsync() => _redis.DisposeAsync();

    [Fact]
    public async Task AStateOverTheCap_IsRolledBackWith413_AndThePreviousCheckpointStaysInBothTiers()
    {
        await using var servers = await StartAsync(["--Baton:Checkpoints:MaxStateBytes=65536"]);
        using var client = servers.Gateway.NewClient();
        var small = await client.BlobAsync(HttpMethod.Post, 10_000);

        using var tooLarge = await client.PostAsync(new Uri("/blob?bytes=100000", UriKind.Relative), null);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge.StatusCode);
        Assert.Contains("limit of 65536", await tooLarge.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(small.Sha256, (await client.BlobAsync(HttpMethod.Get)).Sha256);
        var id = SessionCookies.SessionIdOf(client, servers.Gateway);
        foreach (var stored in new[] { StoredSessions.FromJournal(servers.Gateway.JournalPath, id)!, StoredSessions.FromRedis(_redis.Database, id)! })
        {
            Assert.Equal(1, stored.Version);
            Assert.Equal(10_000, stored.Values["blob"].Length);
        }
    }

    [Fact]
    public async Task AnIdleSession_ExpiresInTheGatewayAndBothTiers_OnAVirtualClock_AndItsCookieStartsAFreshSession()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var servers = await StartAsync([], builder => builder.Services.AddSingleton<TimeProvider>(time));
        using var client = servers.Gateway.NewClient();
        await client.IncrementAsync();
        await client.IncrementAsync();
        var id = SessionCookies.SessionIdOf(client, servers.Gateway);
        Assert.NotNull(StoredSessions.FromJournal(servers.Gateway.JournalPath, id));

        time.Advance(TimeSpan.FromMinutes(21));

        await Eventually.TrueAsync(
            () => StoredSessions.FromJournal(servers.Gateway.JournalPath, id) is null && StoredSessions.FromRedis(_redis.Database, id) is null,
            TimeSpan.FromSeconds(10),
            "the purge should delete the expired session from both tiers");
        Assert.Equal(1, (await client.IncrementAsync()).Count);
        Assert.NotEqual(id, SessionCookies.SessionIdOf(client, servers.Gateway));
    }

    [Fact]
    public async Task AnIdleSession_ExpiresEverywhere_WithARealShortTimeout()
    {
        await using var servers = await StartAsync(["--Baton:Sessions:IdleTimeout=00:00:02", "--Baton:Sessions:PurgeInterval=00:00:00.200"]);
        using var client = servers.Gateway.NewClient();
        await client.IncrementAsync();
        var id = SessionCookies.SessionIdOf(client, servers.Gateway);
        Assert.NotNull(StoredSessions.FromRedis(_redis.Database, id));

        await Eventually.TrueAsync(
            () => StoredSessions.FromJournal(servers.Gateway.JournalPath, id) is null && StoredSessions.FromRedis(_redis.Database, id) is null,
            TimeSpan.FromSeconds(15),
            "the idle session should be deleted from both tiers");
        Assert.Equal(1, (await client.IncrementAsync()).Count);
    }

    [Fact]
    public async Task AGatewayRestart_KeepsEverySessionItsPinAndItsCookie()
    {
        var journal = Path.Combine(TestPaths.NewFolder("restart"), "journal.db");
        await using var servers = await StartAsync([$"--Baton:JournalPath={journal}"]);
        var browsers = await TwoIncrementsEachAsync(servers.Gateway, 6);

        await servers.RestartGatewayAsync();

        await AssertEachCarriesOnAsync(servers.Gateway, browsers);
    }

    [Fact]
    public async Task ACorruptedJournal_IsQuarantinedAtStartup_AndRebuiltFromRedis_WithEpochs_SoSessionsCarryOn()
    {
        var journal = Path.Combine(TestPaths.NewFolder("corrupt"), "journal.db");
        await using var servers = await StartAsync([$"--Baton:JournalPath={journal}"]);
        var browsers = await TwoIncrementsEachAsync(servers.Gateway, 5);

        // One session in a later epoch (as after a change that could not be stored): the rebuild must keep it,
        // or its backend's copy from the earlier epoch could be served again.
        using (var first = servers.Gateway.ClientWithJar(browsers[0].Jar))
        {
            var moved = SessionCookies.SessionIdOf(first, servers.Gateway);
            servers.Gateway.Services.GetRequiredService<Baton.Gateway.Sessions.ISessionPinTable>().AdvanceEpoch(Baton.Gateway.Sessions.SessionId.TryParse(moved, out var parsed) ? parsed : throw new InvalidOperationException());
            await Eventually.TrueAsync(() => StoredSessions.FromRedis(_redis.Database, moved)?.Epoch == 1 && StoredSessions.FromJournal(journal, moved)?.Epoch == 1, TimeSpan.FromSeconds(10), "the new epoch should be stored");
        }

        await servers.Gateway.DisposeAsync();
        await using (var file = File.OpenWrite(journal))
        {
            await file.WriteAsync(new byte[4096]);
        }

        await servers.StartGatewayAsync(redis: true);

        Assert.Single(Directory.GetFiles(Path.GetDirectoryName(journal)!, "journal.db.corrupt-*"));
        using (var first = servers.Gateway.ClientWithJar(browsers[0].Jar))
        {
            Assert.Equal(1, StoredSessions.FromJournal(journal, SessionCookies.SessionIdOf(first, servers.Gateway))?.Epoch);
        }

        await AssertEachCarriesOnAsync(servers.Gateway, browsers);
    }

    [Fact]
    public async Task AJournalThatCannotWrite_LeavesRedisHoldingAcknowledgedChanges_WithNoGateway5xx_AndCatchesUpAfterwards()
    {
        await using var servers = await StartAsync([LockTimeout]);
        using var client = servers.Gateway.NewClient();
        await client.IncrementAsync();
        await client.IncrementAsync();
        var id = SessionCookies.SessionIdOf(client, servers.Gateway);

        // Another writer holds the journal's lock past the lock timeout: every commit fails, as on a failing disk.
        using (new JournalLock(servers.Gateway.JournalPath))
        {
            for (var i = 3; i <= 5; i++)
            {
                Assert.Equal(i, (await client.IncrementAsync()).Count);
            }

            Assert.Equal(5, StoredSessions.FromRedis(_redis.Database, id)!.Version);
            Assert.Equal(2, StoredSessions.FromJournal(servers.Gateway.JournalPath, id)!.Version);
        }

        Assert.Equal(6, (await client.IncrementAsync()).Count);
        Assert.Equal(6, StoredSessions.FromJournal(servers.Gateway.JournalPath, id)!.Int32("counter"));
    }

    [Fact]
    public async Task AChangeNeitherTierCouldStore_IsNotKeptByTheBackendEither_SoARetryCountsOnce()
    {
        await using var servers = await StartAsync([LockTimeout], redis: false);
        using var client = servers.Gateway.NewClient();
        await client.IncrementAsync();
        await client.IncrementAsync();

        using (new JournalLock(servers.Gateway.JournalPath))
        {
            using var refused = await client.PostAsync(new Uri("/counter", UriKind.Relative), content: null);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
            Assert.Contains("was not made", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The retry is the third increment, not the fourth: the refused one left no trace in the backend.
        Assert.Equal(3, (await client.IncrementAsync()).Count);
        Assert.Equal(3, (await client.ReadCounterAsync()).Count);
        Assert.Equal(3, StoredSessions.FromJournal(servers.Gateway.JournalPath, SessionCookies.SessionIdOf(client, servers.Gateway))!.Int32("counter"));
    }

    /// <summary>Browsers that each made two increments, with the instance that served them.</summary>
    private static async Task<List<(CookieContainer Jar, string Instance)>> TwoIncrementsEachAsync(TestGateway gateway, int count)
    {
        var browsers = new List<(CookieContainer Jar, string Instance)>();
        for (var i = 0; i < count; i++)
        {
            var jar = new CookieContainer();
            using var client = gateway.ClientWithJar(jar);
            await client.IncrementAsync();
            browsers.Add((jar, (await client.IncrementAsync()).Instance));
        }

        return browsers;
    }

    /// <summary>Each browser's next increment is its third, on the same instance: session, pin and cookie survived.</summary>
    private static async Task AssertEachCarriesOnAsync(TestGateway gateway, List<(CookieContainer Jar, string Instance)> browsers)
    {
        foreach (var (jar, instance) in browsers)
        {
            using var client = gateway.ClientWithJar(jar);
            var answer = await client.IncrementAsync();
            Assert.Equal(3, answer.Count);
            Assert.Equal(instance, answer.Instance);
        }
    }

    [Fact]
    public async Task WithRedisUnreachable_TheGatewayStartsAndServesFromTheJournal()
    {
        await using var servers = await StartAsync(["--Baton:Redis=127.0.0.1:1"], redis: false);
        using var client = servers.Gateway.NewClient();

        await client.IncrementAsync();
        Assert.Equal(2, (await client.IncrementAsync()).Count);

        Assert.Equal(2, StoredSessions.FromJournal(servers.Gateway.JournalPath, SessionCookies.SessionIdOf(client, servers.Gateway))!.Version);
    }

    private async Task<Servers> StartAsync(string[] args, Action<WebApplicationBuilder>? configure = null, bool redis = true)
    {
        var backends = new List<TestBackend>();
        for (var i = 1; i <= 3; i++)
        {
            backends.Add(await TestBackend.StartAsync($"b{i}", [], configure));
        }

        string[] gatewayArgs = redis ? [$"--Baton:Redis={_redis.Configuration}", .. args] : args;
        var servers = new Servers(backends, gatewayArgs, configure);
        await servers.StartGatewayAsync(redis);
        return servers;
    }

    private sealed class Servers(List<TestBackend> backends, string[] args, Action<WebApplicationBuilder>? configure) : IAsyncDisposable
    {
        private bool _redis;

        public TestGateway Gateway { get; private set; } = null!;

        public async Task StartGatewayAsync(bool redis)
        {
            _redis = redis;
            Gateway = await TestGateway.StartAsync(backends, args, configure);
            if (redis)
            {
                await Gateway.WaitForRedisAsync();
            }
        }

        public async Task RestartGatewayAsync()
        {
            await Gateway.DisposeAsync();
            await StartGatewayAsync(_redis);
        }

        public async ValueTask DisposeAsync()
        {
            await Gateway.DisposeAsync();
            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }
        }
    }
}
