using Baton.Tests.Infrastructure;

namespace Baton.Tests.Store;

/// <summary>
/// A Redis refill whose journal cannot be read, or whose writes Redis refuses: the gateway serves on, Redis is not
/// marked as holding everything, and the refill completes once it can.
/// </summary>
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

    [Fact]
    public async Task ARefillWhoseWritesRedisRefuses_LeavesRedisUnmarked_AndWritesThemAtTheNextCheck()
    {
        using var refused = _gateway.NewClient();
        using var taken = _gateway.NewClient();
        Assert.Equal(1, (await refused.IncrementAsync()).Count);
        Assert.Equal(1, (await taken.IncrementAsync()).Count);
        var refusedKey = StoredSessions.RedisKey(SessionCookies.SessionIdOf(refused, _gateway));
        var takenKey = StoredSessions.RedisKey(SessionCookies.SessionIdOf(taken, _gateway));

        // Redis lets the gateway write its marker and one of the two sessions only (an ACL), then loses its data.
        await _redis.Database.ExecuteAsync("ACL", "SETUSER", "default", "resetkeys", "%R~*", "~" + StoredSessions.RedisMarker(), "~" + takenKey);
        try
        {
            await _redis.Database.ExecuteAsync("FLUSHALL");
            await Eventually.TrueAsync(() => _logs.Lines.Any(l => l.Contains("[3026]", StringComparison.Ordinal)), TimeSpan.FromSeconds(15), "the refill should say it wrote only part");
            Assert.True(await _redis.Database.KeyExistsAsync(takenKey));
            Assert.False(await _redis.Database.KeyExistsAsync(refusedKey));
            Assert.False(await _redis.Database.KeyExistsAsync(StoredSessions.RedisMarker()), "a Redis lacking a session must not be marked as holding everything");
        }
        finally
        {
            await _redis.Database.ExecuteAsync("ACL", "SETUSER", "default", "allkeys");
        }

        await Eventually.TrueAsync(
            async () => await _redis.Database.KeyExistsAsync(refusedKey) && await _redis.Database.KeyExistsAsync(StoredSessions.RedisMarker()),
            TimeSpan.FromSeconds(15),
            "the next check should write the refused session and mark Redis");
        Assert.Equal(2, (await refused.IncrementAsync()).Count);
    }
}
