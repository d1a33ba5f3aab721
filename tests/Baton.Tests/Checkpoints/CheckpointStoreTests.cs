using System.Security.Cryptography;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Checkpoints;

/// <summary>Checkpoints through real backends, a real gateway, a real SQLite journal and a real redis-server.</summary>
[Trait("Category", "Functional")]
public sealed class CheckpointStoreTests(RedisTestCluster cluster) : IClassFixture<RedisTestCluster>
{
    [Fact]
    public async Task TwentySessionsOfTenIncrements_BothTiersHoldVersionTenAndTheCount_AndReadsWriteNothing()
    {
        var sessions = new List<(HttpClient Client, string Id)>();
        for (var s = 0; s < 20; s++)
        {
            var client = cluster.Gateway.NewClient();
            for (var i = 0; i < 10; i++)
            {
                await client.IncrementAsync();
            }

            sessions.Add((client, SessionCookies.SessionIdOf(client, cluster.Gateway)));
        }

        // Read at once: an answered request's checkpoint is already stored (acknowledged means durable).
        var before = new Dictionary<string, (StoredSession Journal, StoredSession Redis)>();
        foreach (var (_, id) in sessions)
        {
            var journal = StoredSessions.FromJournal(cluster.JournalPath, id);
            var redis = StoredSessions.FromRedis(cluster.Redis!.Database, id);
            Assert.NotNull(journal);
            Assert.NotNull(redis);
            Assert.Equal(10, journal.Version);
            Assert.Equal(10, redis.Version);
            Assert.Equal(10, journal.Int32("counter"));
            Assert.Equal(journal.State, redis.State);
            before[id] = (journal, redis);
        }

        foreach (var (client, _) in sessions)
        {
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(10, (await client.ReadCounterAsync()).Count);
            }
        }

        foreach (var (client, id) in sessions)
        {
            Assert.Equal(before[id].Journal.LastAccess, StoredSessions.FromJournal(cluster.JournalPath, id)!.LastAccess);
            Assert.Equal(before[id].Redis.LastAccess, StoredSessions.FromRedis(cluster.Redis!.Database, id)!.LastAccess);
            client.Dispose();
        }
    }

    [Fact]
    public async Task Redis_TakesACheckpointOnlyFromTheSessionsEpochOrALaterOne_AsEveryJournalDoes()
    {
        // The journals' side of this table is JournalProviderTests.EachWrite_ChecksVersionAndEpochInOneStatement_*.
        var redis = cluster.Gateway.Services.GetRequiredService<RedisTier>();
        var id = Baton.Protocol.Ids.New();
        SessionRecord Checkpoint(long version, long epoch) => TestRecords.Checkpoint(id, version, [(byte)version], "b1", 1, epoch);

        Assert.Equal(WriteOutcome.Written, await redis.MoveAsync(id, "b1", 3, 1, DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds()));
        foreach (var (version, epoch, expected) in TestRecords.CheckAndSetAfterAMoveToEpochThree)
        {
            Assert.Equal(expected, await redis.CheckpointAsync(Checkpoint(version, epoch)));
        }

        var cached = (await redis.GetAsync(id, CancellationToken.None)).Record;
        Assert.Equal((2L, 4L), (cached!.Version, cached.Epoch));
    }

    [Fact]
    public async Task OneMegabyteBlob_RoundTripsByteExact_ThroughCheckpointAndBothTiers()
    {
        using var client = cluster.Gateway.NewClient();

        var written = await client.BlobAsync(HttpMethod.Post, 1_000_000);
        var read = await client.BlobAsync(HttpMethod.Get);

        Assert.Equal(written.Sha256, read.Sha256);
        var id = SessionCookies.SessionIdOf(client, cluster.Gateway);
        foreach (var stored in new[] { StoredSessions.FromJournal(cluster.JournalPath, id)!, StoredSessions.FromRedis(cluster.Redis!.Database, id)! })
        {
            var blob = stored.Values["blob"];
            Assert.Equal(1_000_000, blob.Length);
            Assert.Equal(written.Sha256, Convert.ToHexStringLower(SHA256.HashData(blob)));
        }
    }

    [Fact]
    public async Task ConcurrentRequestsOfOneSession_CountExactly_AndTheStoredVersionNeverGoesBack()
    {
        using var client = cluster.Gateway.NewClient();
        await client.IncrementAsync();
        var id = SessionCookies.SessionIdOf(client, cluster.Gateway);
        var versions = new List<long>();
        using var done = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!done.IsCancellationRequested)
            {
                versions.Add(StoredSessions.FromJournal(cluster.JournalPath, id)?.Version ?? 0);
                await Task.Delay(1);
            }
        });

        await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => client.IncrementAsync()));
        await done.CancelAsync();
        await sampler;

        Assert.Equal(21, (await client.ReadCounterAsync()).Count);
        Assert.Equal(21, StoredSessions.FromJournal(cluster.JournalPath, id)!.Version);
        Assert.Equal(21, StoredSessions.FromRedis(cluster.Redis!.Database, id)!.Version);
        Assert.Equal(versions.Order(), versions);
    }

    [Fact]
    public async Task AnOlderCheckpoint_IsRejectedByBothTiers_AndTheNewerOneStays()
    {
        var store = cluster.Gateway.Services.GetRequiredService<SessionStore>();
        var id = SessionId.New().Value;
        byte[] newer = [1, 2, 3];
        byte[] older = [9, 9];

        Assert.Equal(SaveOutcome.Stored, await store.SaveCheckpointAsync(Now(id, 5, newer, "b1")));
        Assert.Equal(SaveOutcome.Stale, await Tier<JournalTier>().CheckpointAsync(Now(id, 4, older, "b2")));
        Assert.Equal(SaveOutcome.Stale, await Tier<RedisTier>().CheckpointAsync(Now(id, 4, older, "b2")));
        Assert.Equal(SaveOutcome.Stale, await store.SaveCheckpointAsync(Now(id, 5, older, "b2")));

        foreach (var stored in new[] { StoredSessions.FromJournal(cluster.JournalPath, id)!, StoredSessions.FromRedis(cluster.Redis!.Database, id)! })
        {
            Assert.Equal(5, stored.Version);
            Assert.Equal(newer, stored.State);
            Assert.Equal("b1", stored.Owner);
        }
    }

    [Fact]
    public async Task ACheckpointThatNamesNoOwner_KeepsTheOwnerBothTiersHold()
    {
        var store = cluster.Gateway.Services.GetRequiredService<SessionStore>();
        var id = SessionId.New().Value;

        Assert.Equal(SaveOutcome.Stored, await store.SaveCheckpointAsync(Now(id, 1, [1], "b2")));
        Assert.Equal(SaveOutcome.Stored, await store.SaveCheckpointAsync(Now(id, 2, [2], null)));

        foreach (var stored in new[] { StoredSessions.FromJournal(cluster.JournalPath, id)!, StoredSessions.FromRedis(cluster.Redis!.Database, id)! })
        {
            Assert.Equal(2, stored.Version);
            Assert.Equal([2], stored.State);
            Assert.Equal("b2", stored.Owner);
        }
    }

    private T Tier<T>() where T : notnull => cluster.Gateway.Services.GetRequiredService<T>();

    private static SessionRecord Now(string id, long version, byte[] state, string? owner)
        => TestRecords.Checkpoint(id, version, state, owner, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
}
