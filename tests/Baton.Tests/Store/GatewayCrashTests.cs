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
    public async Task AGatewayKilledUnderLoad_RestartsWithEveryAcknowledgedSessionItsVersionItsPinAndItsCookie()
    {
        const int Sessions = 40;
        var jars = Enumerable.Range(0, Sessions).Select(_ => new CookieContainer()).ToList();
        var acknowledged = new int[Sessions];
        var instances = new ConcurrentDictionary<int, string>();
        var running = true;
        var clients = jars.Select(jar => WithJar(jar, _gateway.Address)).ToList();
        var load = Task.Run(async () =>
        {
            while (Volatile.Read(ref running))
            {
                await Parallel.ForAsync(0, Sessions, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
                {
                    if (!Volatile.Read(ref running))
                    {
                        return;
                    }

                    try
                    {
                        var answer = await clients[i].IncrementAsync();
                        acknowledged[i] = answer.Count;
                        instances[i] = answer.Instance;
                    }
                    catch (HttpRequestException)
                    {
                        // The gateway died under this request: it was never acknowledged.
                        Volatile.Write(ref running, false);
                    }
                });
            }
        });

        await Eventually.TrueAsync(() => acknowledged.All(c => c >= 3), TimeSpan.FromSeconds(30), "every session should have been used");
        await _gateway.KillAsync();
        Volatile.Write(ref running, false);
        await load;
        clients.ForEach(c => c.Dispose());

        await _gateway.StartAsync();

        for (var i = 0; i < Sessions; i++)
        {
            using var client = WithJar(jars[i], _gateway.Address);
            var cookieBefore = jars[i].GetCookies(_gateway.Address)[TestGateway.CookieName]!.Value;
            var answer = await client.IncrementAsync();

            // Every acknowledged change survived; at most the one in flight at the kill was applied unacknowledged.
            Assert.InRange(answer.Count, acknowledged[i] + 1, acknowledged[i] + 2);
            Assert.Equal(instances[i], answer.Instance);
            Assert.Equal(cookieBefore, jars[i].GetCookies(_gateway.Address)[TestGateway.CookieName]!.Value);
        }
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
