using Baton.Tests.Infrastructure;

namespace Baton.Tests.Store;

/// <summary>A Redis refill whose journal cannot be read: the gateway serves on and refills once it can.</summary>
[Trait("Category", "Functional")]
public sealed class RedisRefillTests : IAsyncLifetime, IDisposable
{
    private readonly RedisServer _redis = new();
    private readonly LogCapture _logs = new();
    private readonly List<TestBackend> _backends = [];
    private TestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        await _redis.InitializeAsync();
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        _gateway = await TestGateway.StartAsync(_backends, [$"--Baton:Redis={_redis.Configuration}", "--Baton:Store:RedisCheckInterval=00:00:00.200", "--Baton:Store:RedisBudget=00:00:05"], _logs.AttachTo);
        await _gateway.WaitForRedisAsync();
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        await _redis.DisposeAsync();
    }

    public void Dispose() => _logs.Dispose();

    [Fact]
    public async Task AJournalThatCannotBeReadDuringARefill_NeitherStopsTheGatewayNorEndsTheRefill_WhichCompletesOnceItCanBeRead()
    {
        using var client = _gateway.NewClient();
        using var idle = _gateway.NewClient();
        Assert.Equal(1, (await client.IncrementAsync()).Count);
        Assert.Equal(1, (await idle.IncrementAsync()).Count);
        var idleKey = StoredSessions.RedisKey(SessionCookies.SessionIdOf(idle, _gateway));
        Assert.True(await _redis.Database.KeyExistsAsync(idleKey));

        // The journal's folder disappears (its writer keeps its open file); Redis then loses its data.
        var folder = Path.GetDirectoryName(_gateway.JournalPath)!;
        Directory.Move(folder, folder + ".gone");
        try
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            await _redis.Database.ExecuteAsync("FLUSHALL");
            await Eventually.TrueAsync(() => _logs.Lines.Any(l => l.Contains("[3016]", StringComparison.Ordinal)), TimeSpan.FromSeconds(15), "the refill should fail on the journal and say so");

            // The host is up and serves; Redis is not marked as refilled.
            Assert.Equal(2, (await client.IncrementAsync()).Count);
            Assert.False(await _redis.Database.KeyExistsAsync(StoredSessions.RedisMarker()));
            Assert.False(await _redis.Database.KeyExistsAsync(idleKey));
        }
        finally
        {
            Directory.Move(folder + ".gone", folder);
        }

        // The next check refills: the session nobody used since is back in Redis, and Redis is marked.
        await Eventually.TrueAsync(
            async () => await _redis.Database.KeyExistsAsync(idleKey) && await _redis.Database.KeyExistsAsync(StoredSessions.RedisMarker()),
            TimeSpan.FromSeconds(15),
            "the next check should refill Redis and mark it");
        Assert.Equal(2, (await idle.IncrementAsync()).Count);
    }
}
