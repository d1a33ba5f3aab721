using System.Globalization;
using System.Net;
using Baton.Tests.Infrastructure;
using StackExchange.Redis;

namespace Baton.Tests.Store;

/// <summary>
/// Two gateway processes over one Sentinel-managed Redis and one PostgreSQL journal, each client's requests
/// alternating between them; the Redis primary is killed after writes its replica never received.
/// </summary>
[Trait("Category", "Functional")]
public sealed class SentinelSharedJournalTests(RedisSentinelSet redis) : IClassFixture<RedisSentinelSet>, IAsyncLifetime
{
    private const int Sessions = 12;
    private readonly List<TestBackend> _backends = [];
    private readonly List<GatewayProcess> _gateways = [];
    private TestJournal _journal = null!;

    public async Task InitializeAsync()
    {
        _journal = await TestJournal.StartAsync(JournalKind.PostgreSql);
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        string[] args = [$"--Baton:Redis={redis.Configuration}", "--Baton:Store:RedisCheckInterval=00:00:00.200", .. _journal.GatewayArgs];
        for (var i = 0; i < 2; i++)
        {
            var gateway = new GatewayProcess([.. _backends.Select(b => b.Address)], args);
            _gateways.Add(gateway);
            await gateway.StartAsync();
        }
    }

    public async Task DisposeAsync()
    {
        _gateways.ForEach(g => g.Stop());
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        await _journal.DisposeAsync();
    }

    [Fact]
    public async Task ThePrimaryKilledWithUnreplicatedWrites_LosesNoAcknowledgedChange_OnEitherGateway()
    {
        // One browser per session, its cookie jar shared by a client of each gateway (both on 127.0.0.1).
        var jars = Enumerable.Range(0, Sessions).Select(_ => new CookieContainer()).ToList();
        var clients = jars.Select(jar => _gateways.Select(g => WithJar(jar, g.Address)).ToArray()).ToList();
        var expected = new int[Sessions];
        var round = 0;
        async Task RoundAsync()
        {
            var r = round++;
            await Task.WhenAll(clients.Select(async (pair, i) => Assert.Equal(++expected[i], (await pair[(i + r) % 2].IncrementAsync()).Count)));
        }

        try
        {
            await RoundAsync();
            await RoundAsync();
            await RoundAsync();
            var ids = jars.Select(jar => jar.GetCookies(_gateways[0].Address)[TestGateway.CookieName]!.Value[..Baton.Protocol.ProtocolConstants.IdLength]).ToList();

            // The replica stops receiving; the next changes are acknowledged with only the primary holding them in Redis.
            await redis.CutReplicationAsync();
            await RoundAsync();
            var refilledBefore = await RefilledAsync();
            await redis.KillPrimaryAsync();

            // With no request meanwhile, only the gateways' refill from the journal can put those changes into the
            // promoted replica: each sees a new run id behind the sentinel.
            using (var promoted = redis.ConnectToReplica())
            {
                await Eventually.TrueAsync(
                    () =>
                    {
                        try
                        {
                            return ids.Select((id, i) => StoredSessions.FromRedis(promoted.GetDatabase(), id)?.Version == expected[i]).All(ok => ok);
                        }
                        catch (RedisException)
                        {
                            // The sentinel closes client connections of the replica it promotes: look again.
                            return false;
                        }
                    },
                    TimeSpan.FromSeconds(30),
                    "the promoted replica should hold every session's newest version, written back from the journal");
            }

            // The write-back was the gateways' refill (counted when one finishes; a write whose answer the sentinel's
            // disconnect swallowed lands uncounted, so not every session need be), and each gateway has confirmed the
            // promoted primary holds every write before Redis answers alone again.
            await Eventually.TrueAsync(
                async () => await RefilledAsync() > refilledBefore && (await Task.WhenAll(_gateways.Select(g => GatewayStatus.RedisIsCurrentAsync(g.Address)))).All(current => current),
                TimeSpan.FromSeconds(15),
                "the gateways should have written back the sessions the replica lacked and found Redis current again");

            // Every count continues exactly on both gateways, and after a backend is gone too (restores read the store).
            await RoundAsync();
            await RoundAsync();
            await _backends[0].DisposeAsync();
            _backends.RemoveAt(0);
            await RoundAsync();
            await RoundAsync();
        }
        finally
        {
            clients.SelectMany(pair => pair).ToList().ForEach(c => c.Dispose());
        }
    }

    // Sessions the gateways wrote back into Redis from the journal (baton.redis.refilled), from their Prometheus endpoints.
    private async Task<long> RefilledAsync()
    {
        using var http = new HttpClient();
        long total = 0;
        foreach (var gateway in _gateways)
        {
            var text = await http.GetStringAsync(new Uri(gateway.Address, "/_baton/metrics"));
            total += text.Split('\n')
                .Where(line => line.StartsWith("baton_redis_refilled", StringComparison.Ordinal))
                .Sum(line => (long)double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
        }

        return total;
    }

    private static HttpClient WithJar(CookieContainer jar, Uri address)
    {
        var client = CookieJar.WithJar(jar);
        client.BaseAddress = address;
        return client;
    }
}
