using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using Baton.Gateway.Store;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Store;

/// <summary>
/// The store's guarantees on every journal provider, one test body each with the provider as data: the embedded
/// SQLite file, and a real PostgreSQL and a real MariaDB server started for the test, killed -9 and hung for real.
/// Redis is a real redis-server beside them.
/// </summary>
[Trait("Category", "Functional")]
public sealed class JournalProviderTests : IAsyncLifetime
{
    private readonly RedisServer _redis = new();
    private readonly List<TestBackend> _backends = [];
    private TestJournal? _journal;

    private TestJournal Journal => _journal!;

    public async Task InitializeAsync()
    {
        await _redis.InitializeAsync();
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        if (_journal is not null)
        {
            await _journal.DisposeAsync();
        }

        await _redis.DisposeAsync();
    }

    [Theory]
    [InlineData(JournalKind.Sqlite)]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task EachWrite_ChecksVersionAndEpochInOneStatement_AndTheRecordComesBackWhole(JournalKind kind)
    {
        _journal = await TestJournal.StartAsync(kind);
        await using var gateway = await TestGateway.StartAsync(_backends, Journal.GatewayArgs);
        var journal = gateway.Services.GetRequiredService<JournalTier>();
        var id = Baton.Protocol.Ids.New();
        var t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        SessionRecord Checkpoint(long version, long epoch, string? owner = "b1")
            => new(id, owner, epoch, version, [(byte)version, (byte)epoch], Baton.Protocol.Ids.Sha256([(byte)version, (byte)epoch]), t + version, t + 1000 + version);

        Assert.Equal(WriteOutcome.Written, await journal.MoveAsync(id, "b1", 3, t, t + 1000));
        foreach (var (version, epoch, expected) in TestRecords.CheckAndSetAfterAMoveToEpochThree)
        {
            Assert.Equal(expected, await journal.CheckpointAsync(Checkpoint(version, epoch)));
        }

        // The stored record is the one write that won, whole: the owner kept from the move (a checkpoint naming
        // another owner in the same epoch does not change it), its state and digest, its times.
        Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(Checkpoint(3, 4, owner: "b9")));
        var stored = (await journal.GetAsync(id, CancellationToken.None)).Record!;
        Assert.Equal((id, "b1", 4L, 3L, t + 3, t + 1003), (stored.SessionId, stored.Owner, stored.Epoch, stored.Version, stored.LastAccess, stored.ExpiresAt));
        Assert.Equal(new byte[] { 3, 4 }, stored.State);
        Assert.Equal(Baton.Protocol.Ids.Sha256(stored.State), stored.Digest);

        // A move to a later epoch takes the owner; one from an earlier epoch changes neither owner nor epoch; times
        // are raised, never lowered.
        Assert.Equal(WriteOutcome.Written, await journal.MoveAsync(id, "b2", 6, t + 20, t + 2000));
        Assert.Equal(WriteOutcome.Written, await journal.MoveAsync(id, "b3", 5, t + 21, t + 2001));
        Assert.Equal(WriteOutcome.Written, await journal.TouchAsync(id, t + 15, t + 1500));
        stored = (await journal.GetAsync(id, CancellationToken.None)).Record!;
        Assert.Equal(("b2", 6L, 3L, t + 21, t + 2001), (stored.Owner, stored.Epoch, stored.Version, stored.LastAccess, stored.ExpiresAt));
        Assert.Equal(new byte[] { 3, 4 }, stored.State);

        // Ids are compared byte for byte: one differing only in case is another session.
        var other = SwapCase(id);
        Assert.Null((await journal.GetAsync(other, CancellationToken.None)).Record);
        Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(TestRecords.Checkpoint(other, 1, [9], "b3", t, 1)));
        Assert.Equal(new byte[] { 3, 4 }, (await journal.GetAsync(id, CancellationToken.None)).Record!.State);

        // A megabyte of state comes back byte for byte.
        var big = new byte[1024 * 1024];
        Random.Shared.NextBytes(big);
        Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(TestRecords.Checkpoint(other, 2, big, "b3", t, 1)));
        Assert.Equal(big, (await journal.GetAsync(other, CancellationToken.None)).Record!.State);

        // Purge drops what expired before its time and nothing else; an end drops the one session.
        Assert.Equal(0, await journal.PurgeAsync(t + 2001));
        Assert.Equal(1, await journal.PurgeAsync(t + 2002));
        Assert.Null((await journal.GetAsync(id, CancellationToken.None)).Record);
        Assert.NotNull((await journal.GetAsync(other, CancellationToken.None)).Record);
        Assert.Equal(WriteOutcome.Written, await journal.EndAsync(other));
        Assert.Null((await journal.GetAsync(other, CancellationToken.None)).Record);

        // A server journal remembers the end: a late write of the ended session (another gateway still holding it)
        // never brings it back. A local journal has one gateway, whose pin table refuses such writes itself.
        var shared = kind != JournalKind.Sqlite;
        Assert.Equal(shared, await journal.HasEndedAsync(other, CancellationToken.None));
        Assert.Equal(shared ? SaveOutcome.Stale : SaveOutcome.Stored, await journal.CheckpointAsync(TestRecords.Checkpoint(other, 3, [3], "b3", t, 1)));
        Assert.Equal(WriteOutcome.Written, await journal.MoveAsync(other, "b1", 2, t, t + 1000));
        Assert.Equal(shared, (await journal.GetAsync(other, CancellationToken.None)).Record is null);
    }

    [Theory]
    [InlineData(JournalKind.Sqlite)]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task AMovesClaim_IsWonByExactlyOneOfManyAtOnce_AndAServerJournalsLeaseHoldsTheOthersOffUntilReleased(JournalKind kind)
    {
        _journal = await TestJournal.StartAsync(kind);
        await using var gateway = await TestGateway.StartAsync(_backends, Journal.GatewayArgs);
        var journal = gateway.Services.GetRequiredService<JournalTier>();
        var shared = kind != JournalKind.Sqlite;
        var t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        // Sixteen claims of one move at once (in one commit or several): one wins, and the session is its.
        var id = Baton.Protocol.Ids.New();
        Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(TestRecords.Checkpoint(id, 5, [5], "b1", t, 2)));
        var claims = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => journal.ClaimAsync(id, $"g{i}", 2, t, t + 1000, shared ? t + 5000 : 0)));
        Assert.Single(claims, c => c == ClaimOutcome.Won);
        Assert.All(claims, c => Assert.True(c is ClaimOutcome.Won or ClaimOutcome.Lost, c.ToString()));
        var stored = (await journal.GetAsync(id, CancellationToken.None)).Record!;
        Assert.Equal(($"g{Array.IndexOf(claims, ClaimOutcome.Won)}", 3L, 5L), (stored.Owner, stored.Epoch, stored.Version));
        Assert.Equal(new byte[] { 5 }, stored.State);
        Assert.Equal(shared ? t + 5000 : 0, stored.MovingUntil);

        // The winner's lease holds the next move off (a server journal's: a local one has one gateway, and no lease)
        // until it is released or runs out; a claim from an epoch the session has left never wins.
        Assert.Equal(shared ? ClaimOutcome.Lost : ClaimOutcome.Won, await journal.ClaimAsync(id, "late", 3, t + 10, t + 1000, 0));
        Assert.Equal(ClaimOutcome.Lost, await journal.ClaimAsync(id, "stale", 2, t + 10, t + 1000, 0));
        if (shared)
        {
            Assert.Equal(ClaimOutcome.Won, await journal.ClaimAsync(id, "after", 3, t + 5000, t + 1000, 0));
            Assert.Equal(WriteOutcome.Written, await journal.ReleaseAsync(id, 4));
            Assert.Equal(ClaimOutcome.Won, await journal.ClaimAsync(id, "next", 4, t + 20, t + 1000, t + 9000));
            Assert.Equal(WriteOutcome.Written, await journal.ReleaseAsync(id, 5));
            Assert.Equal(("next", 5L, 0L), ((await journal.GetAsync(id, CancellationToken.None)).Record!.Owner, (await journal.GetAsync(id, CancellationToken.None)).Record!.Epoch, (await journal.GetAsync(id, CancellationToken.None)).Record!.MovingUntil));
        }

        // A session no row holds is created by its claim, empty; one that ended is never claimed back on a server journal.
        var fresh = Baton.Protocol.Ids.New();
        Assert.Equal(ClaimOutcome.Won, await journal.ClaimAsync(fresh, "b2", 0, t, t + 1000, 0));
        Assert.Equal(("b2", 1L, 0L), ((await journal.GetAsync(fresh, CancellationToken.None)).Record!.Owner, (await journal.GetAsync(fresh, CancellationToken.None)).Record!.Epoch, (await journal.GetAsync(fresh, CancellationToken.None)).Record!.Version));
        Assert.Equal(WriteOutcome.Written, await journal.EndAsync(fresh));
        Assert.Equal(shared ? ClaimOutcome.Lost : ClaimOutcome.Won, await journal.ClaimAsync(fresh, "b3", 1, t, t + 1000, 0));
    }

    [Theory]
    [InlineData(JournalKind.Sqlite)]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task ManyRequestsAtOnce_ShareCommits_AndEachSessionCountsExactly(JournalKind kind)
    {
        _journal = await TestJournal.StartAsync(kind);
        await using var gateway = await TestGateway.StartAsync(_backends, [$"--Baton:Store:Redis={_redis.Configuration}", .. Journal.GatewayArgs]);
        using var batches = new InstrumentCounter(gateway, "baton.journal.commit.batch_size");
        var clients = Enumerable.Range(0, 40).Select(_ => gateway.NewClient()).ToList();
        for (var round = 1; round <= 5; round++)
        {
            await Parallel.ForEachAsync(clients, new ParallelOptions { MaxDegreeOfParallelism = 20 }, async (client, _) => Assert.Equal(round, (await client.IncrementAsync()).Count));
        }

        // Group commit: fewer commits than writes (at least 200 checkpoints and 40 moves went through the journal).
        Assert.True(batches.Max > 1 && batches.Count < batches.Total, $"commits should carry several writes ({batches.Total} writes in {batches.Count} commits, largest {batches.Max})");
        foreach (var client in clients)
        {
            Assert.Equal(5, (await Journal.ReadAsync(SessionCookies.SessionIdOf(client, gateway), gateway.JournalPath))!.Int32("counter"));
            client.Dispose();
        }
    }

    [Theory]
    [InlineData(JournalKind.Sqlite, false)]
    [InlineData(JournalKind.Sqlite, true)]
    [InlineData(JournalKind.PostgreSql, false)]
    [InlineData(JournalKind.PostgreSql, true)]
    [InlineData(JournalKind.MySql, false)]
    [InlineData(JournalKind.MySql, true)]
    public async Task TheGatewayKilledUnderLoad_WithRedisOrWithout_EveryAcknowledgedChangeIsThereAfterTheRestart(JournalKind kind, bool redisToo)
    {
        _journal = await TestJournal.StartAsync(kind);
        var gateway = new GatewayProcess(_backends.Select(b => b.Address).ToList(), [$"--Baton:Store:Redis={_redis.Configuration}", .. Journal.GatewayArgs]);
        try
        {
            await gateway.StartAsync();
            const int Sessions = 20;
            var jars = Enumerable.Range(0, Sessions).Select(_ => new CookieContainer()).ToList();
            var acknowledged = new int[Sessions];
            var instances = new ConcurrentDictionary<int, string>();
            var running = true;
            var clients = jars.Select(jar => WithJar(jar, gateway.Address)).ToList();
            var load = Task.Run(async () =>
            {
                while (Volatile.Read(ref running))
                {
                    await Parallel.ForAsync(0, Sessions, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (i, _) =>
                    {
                        try
                        {
                            if (Volatile.Read(ref running))
                            {
                                var answer = await clients[i].IncrementAsync();
                                acknowledged[i] = answer.Count;
                                instances[i] = answer.Instance;
                            }
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
            if (redisToo)
            {
                await _redis.KillAsync();
            }

            await gateway.KillAsync();
            Volatile.Write(ref running, false);
            await load;
            clients.ForEach(c => c.Dispose());

            // Killed with the gateway, Redis comes back empty: every session is the journal's.
            if (redisToo)
            {
                await _redis.StartAsync();
            }

            await gateway.StartAsync();
            for (var i = 0; i < Sessions; i++)
            {
                using var client = WithJar(jars[i], gateway.Address);
                var cookieBefore = jars[i].GetCookies(gateway.Address)[TestGateway.CookieName]!.Value;
                var answer = await client.IncrementAsync();

                // Every acknowledged change survived, on its pin, under its cookie; at most the one in flight at the
                // kill was applied unacknowledged.
                Assert.InRange(answer.Count, acknowledged[i] + 1, acknowledged[i] + 2);
                Assert.Equal(instances[i], answer.Instance);
                Assert.Equal(cookieBefore, jars[i].GetCookies(gateway.Address)[TestGateway.CookieName]!.Value);
            }
        }
        finally
        {
            gateway.Stop();
        }
    }

    [Theory]
    [InlineData(JournalKind.Sqlite)]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task RedisKilledUnderLoadAndRestartedEmpty_NoRequestFails_AndRedisIsRefilledFromTheJournal(JournalKind kind)
    {
        _journal = await TestJournal.StartAsync(kind);
        await using var gateway = await TestGateway.StartAsync(_backends, [$"--Baton:Store:Redis={_redis.Configuration}", "--Baton:Store:RedisCheckInterval=00:00:00.200", "--Baton:Store:RedisBudget=00:00:00.100", .. Journal.GatewayArgs]);
        await gateway.WaitForRedisAsync();
        var clients = Enumerable.Range(0, 30).Select(_ => gateway.NewClient()).ToList();
        var expected = new int[clients.Count];
        async Task RoundAsync() => await Parallel.ForAsync(0, clients.Count, new ParallelOptions { MaxDegreeOfParallelism = 10 }, async (i, _) =>
            Assert.Equal(++expected[i], (await clients[i].IncrementAsync()).Count));

        await RoundAsync();
        await _redis.KillAsync();
        for (var round = 0; round < 10; round++)
        {
            await RoundAsync();
        }

        await _redis.StartAsync();
        await Eventually.TrueAsync(
            () => clients.Select((c, i) => StoredSessions.FromRedis(_redis.Database, SessionCookies.SessionIdOf(c, gateway))?.Version == expected[i]).All(ok => ok),
            TimeSpan.FromSeconds(30),
            "Redis should be refilled from the journal with every session's newest version");

        await RoundAsync();
        for (var i = 0; i < clients.Count; i++)
        {
            var id = SessionCookies.SessionIdOf(clients[i], gateway);
            Assert.Equal(expected[i], StoredSessions.FromRedis(_redis.Database, id)!.Int32("counter"));
            Assert.Equal(expected[i], (await Journal.ReadAsync(id, gateway.JournalPath))!.Int32("counter"));
            clients[i].Dispose();
        }
    }

    [Theory]
    [InlineData(JournalKind.Sqlite, true)]
    [InlineData(JournalKind.PostgreSql, false)]
    [InlineData(JournalKind.PostgreSql, true)]
    [InlineData(JournalKind.MySql, false)]
    [InlineData(JournalKind.MySql, true)]
    public async Task TheJournalGoneUnderLoadWithRedisUp_NoRequestFails_NoneIsLost_AndTheJournalCatchesUpWhenBack(JournalKind kind, bool hang)
    {
        _journal = await TestJournal.StartAsync(kind);

        // Redis is the tier that carries on here: a budget that a busy machine never exceeds (with the journal gone
        // too, a Redis write over its budget is a change nobody stored, rightly refused 503).
        await using var gateway = await TestGateway.StartAsync(_backends, [$"--Baton:Store:Redis={_redis.Configuration}", "--Baton:Store:RedisCheckInterval=00:00:00.200", "--Baton:Store:RedisBudget=00:00:02", .. Journal.GatewayArgs]);
        await gateway.WaitForRedisAsync();
        var clients = Enumerable.Range(0, 20).Select(_ => gateway.NewClient()).ToList();
        var expected = new int[clients.Count];
        async Task RoundAsync() => await Parallel.ForAsync(0, clients.Count, new ParallelOptions { MaxDegreeOfParallelism = 10 }, async (i, _) =>
            Assert.Equal(++expected[i], (await clients[i].IncrementAsync()).Count));

        await RoundAsync();
        var ids = clients.Select(c => SessionCookies.SessionIdOf(c, gateway)).ToList();
        var outage = await Journal.OutageAsync(gateway.JournalPath, hang);
        try
        {
            // Acknowledged on Redis alone, every one of them (a hung journal is skipped once a commit times out).
            for (var round = 0; round < 4; round++)
            {
                await RoundAsync();
            }
        }
        finally
        {
            await outage.DisposeAsync();
        }

        await Eventually.TrueAsync(
            async () =>
            {
                for (var i = 0; i < ids.Count; i++)
                {
                    if ((await Journal.ReadAsync(ids[i], gateway.JournalPath))?.Version != expected[i])
                    {
                        return false;
                    }
                }

                return true;
            },
            TimeSpan.FromSeconds(30),
            "the journal should catch up with every change Redis alone held");

        // Redis lost now would lose nothing: the journal alone carries on from where it caught up.
        await _redis.KillAsync();
        await RoundAsync();
        for (var i = 0; i < ids.Count; i++)
        {
            Assert.Equal(expected[i], (await Journal.ReadAsync(ids[i], gateway.JournalPath))!.Int32("counter"));
            clients[i].Dispose();
        }
    }

    [Theory]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task ASecondGatewayWithAnEmptyDisk_ContinuesEverySessionOfTheFirst_MadeBeforeAndAfterItStarted(JournalKind kind)
    {
        _journal = await TestJournal.StartAsync(kind);
        string[] args = [$"--Baton:Store:Redis={_redis.Configuration}", .. Journal.GatewayArgs];
        var first = new GatewayProcess(_backends.Select(b => b.Address).ToList(), args);
        var second = new GatewayProcess(_backends.Select(b => b.Address).ToList(), args);
        try
        {
            await first.StartAsync();
            var jars = Enumerable.Range(0, 20).Select(_ => new CookieContainer()).ToList();
            var instances = new string[jars.Count];
            async Task CountToThreeAsync(int from, int to)
            {
                for (var i = from; i < to; i++)
                {
                    using var client = WithJar(jars[i], first.Address);
                    for (var n = 0; n < 3; n++)
                    {
                        instances[i] = (await client.IncrementAsync()).Instance;
                    }
                }
            }

            // Half the sessions exist when the second gateway starts (it loads them); half are made after (it finds
            // them on first sight of their cookies).
            await CountToThreeAsync(0, 10);
            await second.StartAsync();
            await CountToThreeAsync(10, 20);

            for (var i = 0; i < jars.Count; i++)
            {
                using var client = WithJar(jars[i], second.Address);
                Assert.Equal(new CounterAnswer(4, instances[i]), await client.IncrementAsync());
                Assert.Equal(new CounterAnswer(5, instances[i]), await client.IncrementAsync());
            }
        }
        finally
        {
            first.Stop();
            second.Stop();
        }
    }

    [Theory]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task ASessionMadeWhileTheServerJournalWasDown_ContinuesOnAnotherGateway_ButOneThatEndedDoesNot(JournalKind kind)
    {
        _journal = await TestJournal.StartAsync(kind);
        string[] shared = [$"--Baton:Store:Redis={_redis.Configuration}", "--Baton:Store:RedisBudget=00:00:00.100", .. Journal.GatewayArgs];

        // The first gateway never catches up in this test: what Redis alone holds stays so until the second sees it.
        await using var first = await TestGateway.StartAsync(_backends, [.. shared, "--Baton:Store:RedisCheckInterval=00:10:00"]);
        await using var second = await TestGateway.StartAsync(_backends, [.. shared, "--Baton:Store:RedisCheckInterval=00:00:00.200"]);
        await first.WaitForRedisAsync();

        // A session that ends, its delete missed by Redis (put back as it was): the journal deleted it and marks it
        // ended; Redis still has its copy.
        using var leaving = first.NewClient();
        await leaving.IncrementAsync();
        await leaving.IncrementAsync();
        var leftCookie = CookieJar.Of(leaving).GetCookies(first.Address)[TestGateway.CookieName]!.Value;
        var leftId = SessionCookies.SessionIdOf(leaving, first);
        var leftKey = StoredSessions.RedisKey(leftId);
        var leftCopy = await _redis.Database.HashGetAllAsync(leftKey);
        using (var logout = await leaving.PostAsync(new Uri("/logout", UriKind.Relative), content: null))
        {
            Assert.True(logout.IsSuccessStatusCode);
        }

        await Eventually.TrueAsync(async () => !await _redis.Database.KeyExistsAsync(leftKey), TimeSpan.FromSeconds(10), "the end should reach Redis");
        await _redis.Database.HashSetAsync(leftKey, leftCopy);
        Assert.Null(await Journal.ReadAsync(leftId, first.JournalPath));
        Assert.Equal(2, StoredSessions.FromRedis(_redis.Database, leftId)!.Int32("counter"));

        // Sessions made while the journal is down: acknowledged on Redis alone.
        var clients = Enumerable.Range(0, 3).Select(_ => first.NewClient()).ToList();
        var instances = new string[clients.Count];
        var outage = await Journal.OutageAsync(first.JournalPath, hang: false);
        try
        {
            for (var i = 0; i < clients.Count; i++)
            {
                await clients[i].IncrementAsync();
                instances[i] = (await clients[i].IncrementAsync()).Instance;
            }
        }
        finally
        {
            await outage.DisposeAsync();
        }

        // The journal answers again but holds none of them: the second gateway takes them from Redis, and writes
        // them into the journal; the ended one stays ended.
        for (var i = 0; i < clients.Count; i++)
        {
            using var there = second.ClientWithJar(CookieJar.Of(clients[i]));
            Assert.Equal(new CounterAnswer(3, instances[i]), await there.IncrementAsync());
        }

        await Eventually.TrueAsync(
            async () =>
            {
                foreach (var client in clients)
                {
                    if ((await Journal.ReadAsync(SessionCookies.SessionIdOf(client, first), first.JournalPath))?.Int32("counter") != 3)
                    {
                        return false;
                    }
                }

                return true;
            },
            TimeSpan.FromSeconds(30),
            "the second gateway should write the sessions Redis alone held into the journal");

        using var raw = second.NewRawClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri("/counter", UriKind.Relative));
        request.Headers.Add("Cookie", $"{TestGateway.CookieName}={leftCookie}");
        using var answer = await raw.SendAsync(request);
        Assert.Equal(1, (await answer.Content.ReadFromJsonAsync<CounterAnswer>(System.Text.Json.JsonSerializerOptions.Web))!.Count);
        clients.ForEach(c => c.Dispose());
    }

    [Fact]
    public async Task AGatewayStartedOnAnEmptyDisk_RebuildsItsSqliteJournalFromRedis_AndEverySessionContinues()
    {
        _journal = await TestJournal.StartAsync(JournalKind.Sqlite);
        var jars = Enumerable.Range(0, 10).Select(_ => new CookieContainer()).ToList();
        var instances = new string[jars.Count];
        string[] args = [$"--Baton:Store:Redis={_redis.Configuration}"];
        await using (var first = await TestGateway.StartAsync(_backends, args))
        {
            await first.WaitForRedisAsync();
            for (var i = 0; i < jars.Count; i++)
            {
                using var client = first.ClientWithJar(jars[i]);
                await client.IncrementAsync();
                instances[i] = (await client.IncrementAsync()).Instance;
            }
        }

        // A gateway with a journal of its own that does not exist yet: a new host, a lost disk.
        await using var second = await TestGateway.StartAsync(_backends, args);
        for (var i = 0; i < jars.Count; i++)
        {
            using var client = second.ClientWithJar(jars[i]);
            Assert.Equal(new CounterAnswer(3, instances[i]), await client.IncrementAsync());
            Assert.Equal(3, StoredSessions.FromJournal(second.JournalPath, SessionCookies.SessionIdOf(client, second))!.Int32("counter"));
        }
    }

    [Theory]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task AServerJournalWithANewerSchema_StopsTheGatewaysStartup_WithAMessageSayingSo(JournalKind kind)
    {
        _journal = await TestJournal.StartAsync(kind);
        await using (var first = await TestGateway.StartAsync(_backends, Journal.GatewayArgs))
        {
            using var earlier = first.NewClient();
            await earlier.IncrementAsync();
        }

        // A newer gateway migrated the database: this one must not write rows of a schema it does not know.
        await Journal.ExecuteAsync("UPDATE baton_schema SET version = 99");
        var error = await Assert.ThrowsAnyAsync<Exception>(() => TestGateway.StartAsync(_backends, Journal.GatewayArgs));

        Assert.Contains("has schema version 99, newer than this gateway's (3)", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task AServerJournalOfSchemaVersionOne_IsMigrated_AndItsSessionsContinue(JournalKind kind)
    {
        _journal = await TestJournal.StartAsync(kind);
        await using (var first = await TestGateway.StartAsync(_backends, Journal.GatewayArgs))
        {
            using var earlier = first.NewClient();
            await earlier.IncrementAsync();
        }

        // The schema as version 1 made it: no lease column.
        await Journal.ExecuteAsync("ALTER TABLE baton_sessions DROP COLUMN moving_until");
        await Journal.ExecuteAsync("UPDATE baton_schema SET version = 1");
        await using var gateway = await TestGateway.StartAsync(_backends, Journal.GatewayArgs);
        using var client = gateway.NewClient();
        Assert.Equal(1, (await client.IncrementAsync()).Count);
        var owner = await client.IncrementAsync();
        Assert.Equal(2, owner.Count);

        // A move claims the session in the migrated table, and the count continues on another backend.
        await _backends.Single(b => b.InstanceId == owner.Instance).DisposeAsync();
        var moved = await client.IncrementAsync();
        Assert.Equal(3, moved.Count);
        Assert.NotEqual(owner.Instance, moved.Instance);
    }

    private static HttpClient WithJar(CookieContainer jar, Uri address)
    {
        var client = CookieJar.WithJar(jar);
        client.BaseAddress = address;
        return client;
    }

    private static string SwapCase(string id)
    {
        var chars = id.ToCharArray();
        var i = Array.FindIndex(chars, char.IsLetter);
        chars[i] = char.IsUpper(chars[i]) ? char.ToLowerInvariant(chars[i]) : char.ToUpperInvariant(chars[i]);
        return new string(chars);
    }
}
