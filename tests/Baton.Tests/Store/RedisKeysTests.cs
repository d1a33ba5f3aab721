using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Baton.Tests.Store;

/// <summary>
/// What the gateway keeps in Redis: keys under <c>Baton:Store:RedisKeyPrefix</c>, each living for the idle
/// timeout past its session's last use, and everything written back after Redis lost its data.
/// </summary>
[Trait("Category", "Functional")]
public sealed class RedisKeysTests : IAsyncLifetime
{
    private readonly RedisAndBackends _servers = new(2);

    public Task InitializeAsync() => _servers.InitializeAsync();

    public Task DisposeAsync() => _servers.DisposeAsync();

    [Fact]
    public async Task EveryKey_CarriesThePrefix_AndLivesTheRetentionPastTheLastUse_WhichAReadRefreshes()
    {
        // Idle timeout 4 min, purge every minute: a key lives 5 min; a read refreshes it once an eighth of the
        // idle timeout (30 s) has passed since the last write of the session's last use.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var gateway = await TestGateway.StartAsync(
            _servers.Backends,
            [$"--Baton:Redis={_servers.Redis.Configuration}", "--Baton:Store:RedisKeyPrefix=shop1:", "--Baton:Sessions:IdleTimeout=00:04:00", "--Baton:Sessions:PurgeInterval=00:01:00"],
            builder => builder.Services.AddSingleton<TimeProvider>(time));
        await gateway.WaitForRedisAsync();
        using var touchFailures = new InstrumentCounter(gateway, "baton.redis.unavailable", "baton.operation", "touch");
        using var client = gateway.NewClient();
        Assert.Equal(1, (await client.IncrementAsync()).Count);
        var id = SessionCookies.SessionIdOf(client, gateway);

        var key = StoredSessions.RedisKey(id, "shop1:");
        var stored = StoredSessions.FromRedis(_servers.Redis.Database, id, "shop1:");
        Assert.Equal(1, stored?.Int32("counter"));
        Assert.False(await _servers.Redis.Database.KeyExistsAsync(StoredSessions.RedisKey(id)));
        Assert.Empty(await _servers.Redis.Server.KeysAsync(pattern: "baton:*").ToListAsync());
        // The retention: the idle timeout (4 min), an eighth of it for a stored last use's lag, and a purge interval (1 min).
        var ttl = await _servers.Redis.Database.KeyTimeToLiveAsync(key);
        Assert.InRange(ttl!.Value, TimeSpan.FromMinutes(5.5) - TimeSpan.FromSeconds(30), TimeSpan.FromMinutes(5.5));

        // The key is close to expiring; the session is read 31 s (virtual) later: its last use and TTL are refreshed.
        await _servers.Redis.Database.KeyExpireAsync(key, TimeSpan.FromSeconds(20));
        var usedAt = (long)await _servers.Redis.Database.HashGetAsync(key, "a");
        time.Advance(TimeSpan.FromSeconds(31));
        Assert.Equal(1, (await client.ReadCounterAsync()).Count);

        await Eventually.TrueAsync(
            async () => await _servers.Redis.Database.KeyTimeToLiveAsync(key) > TimeSpan.FromMinutes(4),
            TimeSpan.FromSeconds(10),
            "a read past the touch interval should refresh the key's TTL");
        Assert.Equal(usedAt + 31_000, (long)await _servers.Redis.Database.HashGetAsync(key, "a"));
        Assert.Equal(0, touchFailures.Total);
    }

    [Fact]
    public async Task ARedisThatLostItsData_WithTheSameRunId_GetsEveryLiveSessionBack_WithVersionEpochOwnerAndTtl()
    {
        await using var gateway = await TestGateway.StartAsync(_servers.Backends, [$"--Baton:Redis={_servers.Redis.Configuration}", "--Baton:Store:RedisKeyPrefix=shop2:", "--Baton:Store:RedisCheckInterval=00:00:00.200"]);
        await gateway.WaitForRedisAsync();
        var clients = Enumerable.Range(0, 3).Select(_ => gateway.NewClient()).ToList();
        try
        {
            for (var i = 0; i < clients.Count; i++)
            {
                for (var n = 0; n <= i; n++)
                {
                    await clients[i].IncrementAsync();
                }
            }

            var ids = clients.Select(c => SessionCookies.SessionIdOf(c, gateway)).ToList();
            var before = ids.Select(id => StoredSessions.FromRedis(_servers.Redis.Database, id, "shop2:")!).ToList();
            await Eventually.TrueAsync(() => _servers.Redis.Database.KeyExistsAsync(StoredSessions.RedisMarker("shop2:")), TimeSpan.FromSeconds(10), "the first check should mark Redis");
            var runId = await _servers.Redis.RunIdAsync();

            await _servers.Redis.Database.ExecuteAsync("FLUSHALL");
            Assert.Empty(await _servers.Redis.Server.KeysAsync(pattern: "*").ToListAsync());

            await Eventually.TrueAsync(
                async () => await _servers.Redis.Database.KeyExistsAsync(StoredSessions.RedisMarker("shop2:")) && ids.All(id => StoredSessions.FromRedis(_servers.Redis.Database, id, "shop2:") is not null),
                TimeSpan.FromSeconds(15),
                "every live session should be written back and Redis marked again");
            Assert.Equal(runId, await _servers.Redis.RunIdAsync());
            for (var i = 0; i < ids.Count; i++)
            {
                var after = StoredSessions.FromRedis(_servers.Redis.Database, ids[i], "shop2:")!;
                Assert.Equal(i + 1, after.Int32("counter"));
                Assert.Equal(before[i].Version, after.Version);
                Assert.Equal(before[i].Epoch, after.Epoch);
                Assert.Equal(before[i].Owner, after.Owner);
                Assert.NotNull(await _servers.Redis.Database.KeyTimeToLiveAsync(StoredSessions.RedisKey(ids[i], "shop2:")));
            }
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task ARedisFilledByUnbracedKeys_IsNeitherReadNorTakenBack_TheJournalRefillsTheBracedOnes_AndTheOldKeysKeepTheirTtl()
    {
        var journal = Path.Combine(TestPaths.NewFolder("journal"), "journal.db");
        string[] args = [$"--Baton:Redis={_servers.Redis.Configuration}", $"--Baton:JournalPath={journal}", "--Baton:Store:RedisCheckInterval=00:00:00.200"];
        var jars = Enumerable.Range(0, 3).Select(_ => new System.Net.CookieContainer()).ToList();
        List<string> ids;
        await using (var before = await TestGateway.StartAsync(_servers.Backends, args))
        {
            await before.WaitForRedisAsync();
            foreach (var jar in jars)
            {
                using var client = before.ClientWithJar(jar);
                await client.IncrementAsync();
                await client.IncrementAsync();
            }

            ids = [.. jars.Select(jar => jar.GetCookies(before.Address)[TestGateway.CookieName]!.Value[..Baton.Protocol.ProtocolConstants.IdLength])];
        }

        // Redis as an earlier version left it: unbraced keys, its marker, and copies newer than the journal's that
        // would win a catch-up if they were read (version 99, another session's state).
        var database = _servers.Redis.Database;
        var otherState = await database.HashGetAsync(StoredSessions.RedisKey(ids[^1]), "s");
        foreach (var id in ids)
        {
            await database.KeyRenameAsync(StoredSessions.RedisKey(id), "baton:s:" + id);
            await database.HashSetAsync("baton:s:" + id, [new StackExchange.Redis.HashEntry("v", 99), new StackExchange.Redis.HashEntry("s", otherState), new StackExchange.Redis.HashEntry("d", Baton.Protocol.Ids.Sha256((byte[])otherState!))]);
        }

        await database.KeyDeleteAsync(StoredSessions.RedisMarker());
        await database.StringSetAsync("baton:marker", "1");

        await using var after = await TestGateway.StartAsync(_servers.Backends, args);
        await Eventually.TrueAsync(
            async () => await database.KeyExistsAsync(StoredSessions.RedisMarker()) && ids.All(id => StoredSessions.FromRedis(database, id)?.Version == 2),
            TimeSpan.FromSeconds(15),
            "the first check should write every session into its braced key from the journal, and mark Redis");
        foreach (var (id, jar) in ids.Zip(jars))
        {
            Assert.Equal(2, StoredSessions.FromJournal(journal, id)!.Version);
            Assert.Equal(99, (long)await database.HashGetAsync("baton:s:" + id, "v"));
            Assert.NotNull(await database.KeyTimeToLiveAsync("baton:s:" + id));
            using var client = after.ClientWithJar(jar);
            Assert.Equal(3, (await client.IncrementAsync()).Count);
        }
    }
}
