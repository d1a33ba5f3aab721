using Baton.Protocol;
using Baton.Backend;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace Baton.Tests.Store;

/// <summary>
/// Redis is a cache of the journal and can be behind it: an older version (a write that missed its budget), or
/// an older epoch (a move it missed, and a change of the old owner it took). A restore never uses such a copy,
/// and a refill replaces it with the journal's.
/// </summary>
[Trait("Category", "Functional")]
public sealed class StaleRedisTests : IAsyncLifetime
{
    private readonly RedisAndBackends _servers = new(3);

    public Task InitializeAsync() => _servers.InitializeAsync();

    public Task DisposeAsync() => _servers.DisposeAsync();

    [Fact]
    public async Task ARestoreWhileRedisHoldsAnOlderVersion_RestoresTheJournalsNewest()
    {
        await using var gateway = await StartGatewayAsync("00:10:00");
        using var fallbacks = new InstrumentCounter(gateway, "baton.store.fallback.count", "baton.operation", "read_behind");
        using var client = gateway.NewClient();
        await client.IncrementAsync();
        await client.IncrementAsync();
        var id = SessionCookies.SessionIdOf(client, gateway);
        var key = StoredSessions.RedisKey(id);
        var second = await _servers.Redis.Database.HashGetAsync(key, "s");
        var owner = (await client.IncrementAsync()).Instance;

        // Redis missed the third change.
        await _servers.Redis.Database.HashSetAsync(key, [new HashEntry("v", 2), new HashEntry("s", second)]);
        await _servers.StopAsync(owner);

        var answer = await client.IncrementAsync();
        Assert.Equal(4, answer.Count);
        Assert.NotEqual(owner, answer.Instance);
        Assert.True(fallbacks.Total >= 1, "the restore should be counted as read from the journal past a Redis behind it");
    }

    [Fact]
    public async Task ARedisCopyDamagedAtTheCurrentVersion_IsNotRestored_TheJournalsIs()
    {
        await using var gateway = await StartGatewayAsync("00:10:00");
        using var client = gateway.NewClient();
        await client.IncrementAsync();
        var owner = (await client.IncrementAsync()).Instance;
        var id = SessionCookies.SessionIdOf(client, gateway);

        // Redis's state bytes changed under an unchanged version, epoch and digest: another session's counter (7).
        var other = KeyedState.Encode(new Dictionary<string, byte[]> { ["counter"] = [0, 0, 0, 7] });
        await _servers.Redis.Database.HashSetAsync(StoredSessions.RedisKey(id), "s", other);
        await _servers.StopAsync(owner);

        var answer = await client.IncrementAsync();
        Assert.Equal(3, answer.Count);
        Assert.NotEqual(owner, answer.Instance);
    }

    [Fact]
    public async Task ARedisCopyOfAnOlderEpoch_IsNeverRestored_EvenAtAHigherVersion()
    {
        await using var gateway = await StartGatewayAsync("00:10:00");
        var (client, _) = await MovedSessionWithAForgedOldEpochCopyAsync(gateway);
        using (client)
        {
            // The journal's third change, not the forged copy's fifth.
            Assert.Equal(4, (await client.IncrementAsync()).Count);
        }
    }

    [Fact]
    public async Task ARefill_ReplacesARedisCopyOfAnOlderEpoch_WithTheJournals()
    {
        await using var gateway = await StartGatewayAsync("00:00:00.200");
        await Eventually.TrueAsync(() => _servers.Redis.Database.KeyExistsAsync(StoredSessions.RedisMarker()), TimeSpan.FromSeconds(10), "the first check should mark Redis");
        var (client, id) = await MovedSessionWithAForgedOldEpochCopyAsync(gateway, stopNewOwner: false);
        using (client)
        {
            // Redis lost its data (the marker is gone) but kept the forged copy: the refill writes the journal's over it.
            await _servers.Redis.Database.KeyDeleteAsync(StoredSessions.RedisMarker());
            await Eventually.TrueAsync(
                () => StoredSessions.FromRedis(_servers.Redis.Database, id)?.Epoch == 1,
                TimeSpan.FromSeconds(15),
                "the refill should replace the older epoch's copy");
            var stored = StoredSessions.FromRedis(_servers.Redis.Database, id)!;
            Assert.Equal(3, stored.Version);
            Assert.Equal(3, stored.Int32("counter"));
            Assert.Equal(StoredSessions.FromJournal(gateway.JournalPath, id)!.Owner, stored.Owner);
        }
    }

    [Fact]
    public async Task ASessionTheJournalNoLongerHolds_IsNotTakenBackFromRedisByAStartingGateway()
    {
        var journal = Path.Combine(TestPaths.NewFolder("ended"), "journal.db");
        string[] args = [$"--Baton:Redis={_servers.Redis.Configuration}", $"--Baton:JournalPath={journal}"];
        var jar = new System.Net.CookieContainer();
        string id;
        await using (var gateway = await StartAndWaitAsync(TestGateway.StartAsync(_servers.Backends, args)))
        {
            using var client = gateway.ClientWithJar(jar);
            await client.IncrementAsync();
            Assert.Equal(2, (await client.IncrementAsync()).Count);
            id = SessionCookies.SessionIdOf(client, gateway);
        }

        // The session ended (the journal deleted it) but Redis missed the delete: its key is still there, live.
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={journal};Pooling=false"))
        {
            connection.Open();
            using var delete = connection.CreateCommand();
            delete.CommandText = $"DELETE FROM sessions WHERE id = '{id}'";
            Assert.Equal(1, delete.ExecuteNonQuery());
        }

        Assert.NotNull(StoredSessions.FromRedis(_servers.Redis.Database, id));
        await using var restarted = await StartAndWaitAsync(TestGateway.StartAsync(_servers.Backends, args));
        using var again = restarted.ClientWithJar(jar);

        Assert.Equal(1, (await again.IncrementAsync()).Count);
        Assert.NotEqual(id, SessionCookies.SessionIdOf(again, restarted));
        Assert.Null(StoredSessions.FromJournal(journal, id));
    }

    [Fact]
    public async Task APlaceholderAMoveLeftInAnEmptiedRedis_MovesThePinAtStartup_ButNeverReplacesTheJournalsState()
    {
        var journal = Path.Combine(TestPaths.NewFolder("placeholder"), "journal.db");
        string[] args = [$"--Baton:Redis={_servers.Redis.Configuration}", $"--Baton:JournalPath={journal}"];
        var jar = new System.Net.CookieContainer();
        string id;
        string owner;
        await using (var gateway = await StartAndWaitAsync(TestGateway.StartAsync(_servers.Backends, args)))
        {
            using var client = gateway.ClientWithJar(jar);
            await client.IncrementAsync();
            await client.IncrementAsync();
            owner = (await client.IncrementAsync()).Instance;
            id = SessionCookies.SessionIdOf(client, gateway);
        }

        // Redis lost the key, then took a move's pin alone (the journal stalled): version 0, nothing, in epoch 1.
        var other = _servers.Backends.First(b => b.InstanceId != owner).InstanceId;
        var key = StoredSessions.RedisKey(id);
        await _servers.Redis.Database.KeyDeleteAsync(key);
        await _servers.Redis.Database.HashSetAsync(key, [new HashEntry("v", 0), new HashEntry("s", ""), new HashEntry("e", 1), new HashEntry("o", other), new HashEntry("u", 0), new HashEntry("a", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())]);

        await using var restarted = await StartAndWaitAsync(TestGateway.StartAsync(_servers.Backends, args));
        var caughtUp = StoredSessions.FromJournal(journal, id)!;
        Assert.Equal((3, 1, other), (caughtUp.Version, caughtUp.Epoch, caughtUp.Owner));
        using var again = restarted.ClientWithJar(jar);

        var answer = await again.IncrementAsync();

        Assert.Equal(4, answer.Count);
        Assert.Equal(other, answer.Instance);
        Assert.Equal(4, StoredSessions.FromJournal(journal, id)!.Int32("counter"));
    }

    [Fact]
    public async Task ACheckpointRedisFencesButTheJournalStores_LeavesRedisCopyAlone_ForRedisSawAMoveTheJournalMissed()
    {
        await using var gateway = await StartGatewayAsync("00:10:00");
        using var client = gateway.NewClient();
        await client.IncrementAsync();
        var id = SessionCookies.SessionIdOf(client, gateway);
        var key = StoredSessions.RedisKey(id);

        // Redis holds the session in epoch 1 (a move it took alone); the journal still in epoch 0.
        await _servers.Redis.Database.HashSetAsync(key, "e", 1);
        var store = gateway.Services.GetRequiredService<Baton.Gateway.Store.SessionStore>();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        var outcome = await store.SaveCheckpointAsync(TestRecords.Checkpoint(id, 2, [1, 2], "b1", now));

        // A read on the gateway's own Redis connection comes after any delete the save sent on it.
        Assert.Equal(Baton.Gateway.Store.SaveOutcome.Stored, outcome);
        var (available, held) = await gateway.Services.GetRequiredService<Baton.Gateway.Store.RedisTier>().GetAsync(id, CancellationToken.None);
        Assert.True(available);
        Assert.Equal(1, held?.Epoch);
    }

    /// <summary>
    /// A session changed twice on one backend, moved (epoch 1) by that backend's death and changed on the next;
    /// then Redis is given a copy of epoch 0 at version 9 holding another session's counter (5): what Redis would
    /// hold had it missed the move and taken a late change of the old owner. With <paramref name="stopNewOwner"/>,
    /// the new owner dies too, so the next request restores.
    /// </summary>
    private async Task<(HttpClient Client, string Id)> MovedSessionWithAForgedOldEpochCopyAsync(TestGateway gateway, bool stopNewOwner = true)
    {
        using (var other = gateway.NewClient())
        {
            for (var i = 0; i < 5; i++)
            {
                await other.IncrementAsync();
            }

            var otherState = await _servers.Redis.Database.HashGetAsync(StoredSessions.RedisKey(SessionCookies.SessionIdOf(other, gateway)), "s");
            var client = gateway.NewClient();
            await client.IncrementAsync();
            var firstOwner = (await client.IncrementAsync()).Instance;
            await _servers.StopAsync(firstOwner);
            var moved = await client.IncrementAsync();
            Assert.Equal(3, moved.Count);
            var id = SessionCookies.SessionIdOf(client, gateway);
            Assert.Equal(1, StoredSessions.FromJournal(gateway.JournalPath, id)!.Epoch);

            await _servers.Redis.Database.HashSetAsync(StoredSessions.RedisKey(id), [new HashEntry("v", 9), new HashEntry("e", 0), new HashEntry("s", otherState)]);
            if (stopNewOwner)
            {
                await _servers.StopAsync(moved.Instance);
            }

            return (client, id);
        }
    }

    private Task<TestGateway> StartGatewayAsync(string checkInterval)
        => StartAndWaitAsync(TestGateway.StartAsync(_servers.Backends, [$"--Baton:Redis={_servers.Redis.Configuration}", $"--Baton:Store:RedisCheckInterval={checkInterval}"]));

    private static async Task<TestGateway> StartAndWaitAsync(Task<TestGateway> starting)
    {
        var gateway = await starting;
        await gateway.WaitForRedisAsync();
        return gateway;
    }
}
