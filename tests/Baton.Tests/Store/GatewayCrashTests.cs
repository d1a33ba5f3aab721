using System.Collections.Concurrent;
using System.Net;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Store;

/// <summary>The gateway itself killed -9 under load and started again on the same journal.</summary>
[Trait("Category", "Functional")]
public sealed class GatewayCrashTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private readonly List<TestBackend> _backends = [];
    private GatewayProcess _gateway = null!;

    public async Task InitializeAsync()
    {
        await _redis.InitializeAsync();
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        _gateway = new GatewayProcess(_backends.Select(b => b.Address).ToList(), [$"--Baton:Redis={_redis.Configuration}", "--Baton:ShutdownDelay=00:00:02"]);
        await _gateway.StartAsync();
    }

    public async Task DisposeAsync()
    {
        _gateway.Stop();
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task AGracefulStop_FailsReadinessFirst_KeepsServing_ThenClosesTheJournalCleanly()
    {
        var jar = new CookieContainer();
        using var client = WithJar(jar, _gateway.Address);
        for (var i = 1; i <= 3; i++)
        {
            await client.IncrementAsync();
        }

        var stopping = _gateway.TerminateAsync(TimeSpan.FromSeconds(30));
        await Eventually.TrueAsync(async () =>
        {
            using var ready = await client.GetAsync(new Uri("/_baton/ready", UriKind.Relative));
            return ready.StatusCode == HttpStatusCode.ServiceUnavailable;
        }, TimeSpan.FromSeconds(10), "readiness should fail as soon as the stop begins");
        Assert.Equal(4, (await client.IncrementAsync()).Count);

        Assert.Equal(0, await stopping);
        Assert.False(File.Exists(_gateway.JournalPath + "-wal") && new FileInfo(_gateway.JournalPath + "-wal").Length > 0, "the WAL should be written back on a clean stop");
        await _gateway.StartAsync();
        using var again = WithJar(jar, _gateway.Address);
        Assert.Equal(5, (await again.IncrementAsync()).Count);
    }

    private static HttpClient WithJar(CookieContainer jar, Uri address)
    {
        var client = CookieJar.WithJar(jar);
        client.BaseAddress = address;
        return client;
    }
}
