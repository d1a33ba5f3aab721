using Baton.LoadTest;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Store;

/// <summary>Redis killed for real under load (behind either kind of demo backend), and brought back empty.</summary>
[Trait("Category", "Functional")]
public sealed class RedisOutageTests : IAsyncLifetime
{
    /// <summary>How long Redis stays dead or hung while the load goes on.</summary>
    private static readonly TimeSpan OutageLength = TimeSpan.FromSeconds(10);

    private readonly RedisServer _redis = new();
    private readonly List<BackendProcess> _backends = [];
    private TestGateway _gateway = null!;

    public Task InitializeAsync() => _redis.InitializeAsync();

    public async Task DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }

        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        await _redis.DisposeAsync();
    }

    private async Task StartAsync(BackendKind kind)
    {
        _backends.AddRange(await Task.WhenAll(Enumerable.Range(1, 3).Select(i => BackendProcess.StartAsync($"b{i}", kind: kind))));
        _gateway = await TestGateway.StartAsync(_backends, [$"--Baton:Redis={_redis.Configuration}", "--Baton:Store:RedisCheckInterval=00:00:00.200", "--Baton:Store:RedisBudget=00:00:00.100"]);
        await _gateway.WaitForRedisAsync();
    }

    [Theory]
    [MemberData(nameof(BackendKinds.All), MemberType = typeof(BackendKinds))]
    public async Task RedisKilledUnderLoadOfFortySessions_BlamesNoBackend_AndEachCounterRisesOncePerSuccess(BackendKind kind)
    {
        await StartAsync(kind);
        var clients = Enumerable.Range(0, 40).Select(_ => _gateway.NewClient()).ToList();
        var succeeded = new int[clients.Count];
        var otherAnswers = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var failovers = new InstrumentCounter(_gateway, "baton.failover.count");
        using var moves = new InstrumentCounter(_gateway, "baton.session.moved");
        using var stop = new CancellationTokenSource();

        // Every increment may be resent (it carries an Idempotency-Key), so a wrong resend would show as a double count.
        var load = Parallel.ForAsync(0, clients.Count, new ParallelOptions { MaxDegreeOfParallelism = clients.Count }, async (i, _) =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/counter");
                request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString());
                using var response = await clients[i].SendAsync(request, CancellationToken.None);
                if (response.IsSuccessStatusCode)
                {
                    succeeded[i]++;
                }
                else
                {
                    otherAnswers.Add($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(CancellationToken.None)}");
                }
            }
        });

        await Eventually.TrueAsync(() => succeeded.Min() >= 3, TimeSpan.FromSeconds(30), "every session should have counted a few times");
        await _redis.KillAsync();
        var killedAt = succeeded.Sum();
        await Eventually.TrueAsync(() => succeeded.Sum() >= killedAt + 3000, TimeSpan.FromSeconds(60), "sessions should go on counting with Redis dead");
        await _redis.StartAsync();
        var restartedAt = succeeded.Sum();
        await Eventually.TrueAsync(() => succeeded.Sum() >= restartedAt + 3000, TimeSpan.FromSeconds(60), "sessions should go on counting with Redis back, empty");
        await stop.CancelAsync();
        await load;

        Assert.Equal(0, failovers.Total);
        Assert.Equal(0, moves.Total);
        for (var i = 0; i < clients.Count; i++)
        {
            Assert.Equal(succeeded[i], (await clients[i].ReadCounterAsync()).Count);
            clients[i].Dispose();
        }

        Assert.True(otherAnswers.All(a => a.StartsWith("503", StringComparison.Ordinal)), string.Join(Environment.NewLine, otherAnswers.Take(5)));
    }

    [Fact]
    public async Task AHungRedis_CostsEachRequestNoMoreThanTheBudget_AndNoRequestFails()
    {
        await StartAsync(BackendKind.Dotnet);
        var clients = Enumerable.Range(0, 20).Select(_ => _gateway.NewClient()).ToList();
        foreach (var client in clients)
        {
            await client.IncrementAsync();
        }

        using var skipped = new InstrumentCounter(_gateway, "baton.redis.unavailable", "baton.reason", "circuit_open");
        _redis.Pause();
        var slowest = TimeSpan.Zero;
        var round = 1;
        var outage = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while (outage.Elapsed < OutageLength)
            {
                round++;
                foreach (var client in clients)
                {
                    var started = System.Diagnostics.Stopwatch.GetTimestamp();
                    Assert.Equal(round, (await client.IncrementAsync()).Count);
                    var took = System.Diagnostics.Stopwatch.GetElapsedTime(started);
                    slowest = took > slowest ? took : slowest;
                }
            }
        }
        finally
        {
            _redis.Resume();
        }

        // Bounded by Baton:Store:RedisBudget (100 ms) plus a generous margin for a busy machine, far below
        // StackExchange.Redis's own 5 s timeout.
        Assert.True(slowest < TimeSpan.FromMilliseconds(100) + TimeSpan.FromSeconds(2), $"slowest request took {slowest}");

        // After a few misses in a row the circuit opens and requests stop waiting on Redis at all.
        Assert.True(skipped.Total > 0, "the circuit should have opened");
        foreach (var client in clients)
        {
            Assert.Equal(round, StoredSessions.FromJournal(_gateway.JournalPath, SessionCookies.SessionIdOf(client, _gateway))!.Int32("counter"));
        }

        // Redis resumes with what it held before (and whatever writes it had queued): what it missed is written
        // again from the journal, and no delayed write lands over a newer version.
        await Eventually.TrueAsync(
            () => clients.All(c => StoredSessions.FromRedis(_redis.Database, SessionCookies.SessionIdOf(c, _gateway))?.Int32("counter") == round),
            TimeSpan.FromSeconds(30),
            "Redis should catch up with every session's newest version");
        foreach (var client in clients)
        {
            client.Dispose();
        }
    }
}
