using Baton.Gateway.Store;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Store;

/// <summary>
/// Deltas in the Redis tier, against a real redis-server: each lands as a link after the whole state under the same
/// check-and-set as a whole state, reads fold the chain, and a whole state ends it.
/// </summary>
[Trait("Category", "Functional")]
public sealed class RedisDeltaTests(RedisTestCluster cluster) : IClassFixture<RedisTestCluster>
{
    private static readonly byte[] Big = Enumerable.Range(0, 65_536).Select(i => (byte)(i * 7)).ToArray();

    private RedisTier Redis => cluster.Gateway.Services.GetRequiredService<RedisTier>();

    // The first calls of a fresh connection (scripts loaded, 64 KiB sent) can miss the tier's 50 ms budget: each test
    // starts once a throwaway session's whole state and delta are answered in it.
    private async Task WarmAsync()
    {
        var id = Ids.New();
        await Eventually.TrueAsync(async () => await Redis.CheckpointAsync(Whole(id, 1, 0, n: 1)) != SaveOutcome.Unavailable, TimeSpan.FromSeconds(10), "Redis should answer a whole state");
        await Eventually.TrueAsync(async () => await Redis.CheckpointAsync(Delta(id, 2, 1, 0, 2)) != SaveOutcome.Unavailable, TimeSpan.FromSeconds(10), "Redis should answer a delta");
    }

    [Fact]
    public async Task ADelta_AppliesOnlyOntoAHeldVersionOfItsEpoch_FromItsBaseUp_AndReadsFoldTheChain()
    {
        await WarmAsync();
        var id = Ids.New();
        Assert.Equal(WriteOutcome.Written, await Redis.MoveAsync(id, "b1", 3, 1, Expiry()));
        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(Whole(id, 1, 3, n: 1)));

        // (version, base, epoch, n) and the answer, in order; the session ends at version 3 of epoch 3, n = 3.
        (long Version, long Base, long Epoch, byte N, SaveOutcome Expected)[] deltas =
        [
            (2, 1, 3, 2, SaveOutcome.Stored),
            (4, 3, 3, 9, SaveOutcome.Unapplicable),
            (3, 1, 3, 3, SaveOutcome.Stored),
            (3, 2, 3, 9, SaveOutcome.Stale),
            (5, 4, 2, 9, SaveOutcome.Fenced),
            (3, 2, 4, 9, SaveOutcome.Diverged),
            (5, 3, 4, 9, SaveOutcome.Unapplicable),
        ];
        // Each delta stored reports the chain Redis holds after it (links and their bytes); one refused reports none.
        var linkBytes = 0L;
        foreach (var (version, deltaBase, epoch, n, expected) in deltas)
        {
            var delta = Delta(id, version, deltaBase, epoch, n);
            var report = new CheckpointReport();
            Assert.Equal(expected, await Redis.CheckpointAsync(delta, report));
            linkBytes += expected == SaveOutcome.Stored ? delta.State.Length : 0;
            Assert.Equal(expected == SaveOutcome.Stored ? ((int)version - 1, linkBytes) : (0, 0L), report.Chain);
        }

        var read = (await Redis.GetAsync(id, CancellationToken.None)).Record!;
        Assert.Equal((3L, 3L, "b1"), (read.Version, read.Epoch, read.Owner));
        Assert.Equal(Ids.Sha256(read.State), read.Digest);
        Assert.True(KeyedState.TryDecode(read.State, out var values));
        Assert.Equal([3], values["n"]);
        Assert.Equal(Big, values["big"]);
        Assert.Equal(2, (int)await cluster.Redis!.Database.HashGetAsync(StoredSessions.RedisKey(id), "n"));

        // Nothing held: nothing to apply onto.
        Assert.Equal(SaveOutcome.Unapplicable, await Redis.CheckpointAsync(Delta(Ids.New(), 2, 1, 0, 1)));
    }

    [Fact]
    public async Task AWholeState_EndsTheChain()
    {
        await WarmAsync();
        var id = Ids.New();
        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(Whole(id, 1, 0, n: 1)));
        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(Delta(id, 2, 1, 0, 2)));
        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(Delta(id, 3, 2, 0, 3)));

        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(Whole(id, 4, 0, n: 4)));

        await AssertChainEndedAsync(id, 5);
        var read = (await Redis.GetAsync(id, CancellationToken.None)).Record!;
        Assert.True(KeyedState.TryDecode(read.State, out var values));
        Assert.Equal([5], values["n"]);
        Assert.Equal(1, (int)await cluster.Redis!.Database.HashGetAsync(StoredSessions.RedisKey(id), "n"));
    }

    [Theory]
    [InlineData(9_000)]
    [InlineData(0)]
    public async Task AWholeState_EndsAChainOfAnyLength_AndAByteCountLeftWithoutLinks(int links)
    {
        // Written by hand, as chains from gateways before a restart, or an older gateway's whole state, can leave
        // them: more links than one script call can take at once, or a byte count with no chain under it.
        await WarmAsync();
        var id = Ids.New();
        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(Whole(id, 1, 0, n: 1)));
        var key = StoredSessions.RedisKey(id);
        var stale = Enumerable.Range(1, links).Select(i => new StackExchange.Redis.HashEntry($"l{i}", "x")).ToList();
        stale.Add(new("b", 123_456));
        if (links > 0)
        {
            stale.Add(new("n", links));
        }

        await cluster.Redis!.Database.HashSetAsync(key, [.. stale]);

        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(Whole(id, 2, 0, n: 2)));
        await AssertChainEndedAsync(id, 3);
    }

    [Fact]
    public async Task ADeltaStartingAChain_CountsOnlyItsOwnBytes_ThoughAnOlderGatewayLeftACount()
    {
        // An older gateway's whole state ended the chain but left its byte count: the next chain starts from nothing, or
        // the gateway would end it (asking for the whole 64 KiB) long before it is long.
        await WarmAsync();
        var id = Ids.New();
        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(Whole(id, 1, 0, n: 1)));
        await cluster.Redis!.Database.HashSetAsync(StoredSessions.RedisKey(id), "b", 123_456);

        var report = new CheckpointReport();
        var delta = Delta(id, 2, 1, 0, 2);
        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(delta, report));
        Assert.Equal((1, (long)delta.State.Length), report.Chain);
    }

    // The session's hash holds no chain (no link, count or bytes), and the next delta (as version) starts one of one link.
    private async Task AssertChainEndedAsync(string id, byte version)
    {
        var fields = (await cluster.Redis!.Database.HashGetAllAsync(StoredSessions.RedisKey(id))).Select(f => (string)f.Name!).ToList();
        Assert.DoesNotContain("n", fields);
        Assert.DoesNotContain("b", fields);
        Assert.DoesNotContain(fields, name => name.StartsWith('l'));
        var report = new CheckpointReport();
        var next = Delta(id, version, version - 1, 0, version);
        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(next, report));
        Assert.Equal((1, (long)next.State.Length), report.Chain);
    }

    [Theory]
    [InlineData("link")]
    [InlineData("missing")]
    [InlineData("whole")]
    public async Task AChainWithADamagedPart_ReadsAsDamaged(string damaged)
    {
        await WarmAsync();
        var id = Ids.New();
        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(Whole(id, 1, 0, n: 1)));
        Assert.Equal(SaveOutcome.Stored, await Redis.CheckpointAsync(Delta(id, 2, 1, 0, 2)));
        var key = StoredSessions.RedisKey(id);
        switch (damaged)
        {
            case "link":
                var frame = (byte[])(await cluster.Redis!.Database.HashGetAsync(key, "l1"))!;
                frame[^1] ^= 1;
                await cluster.Redis.Database.HashSetAsync(key, "l1", frame);
                break;
            case "missing":
                await cluster.Redis!.Database.HashSetAsync(key, "n", 2);
                break;
            default:
                var whole = (byte[])(await cluster.Redis!.Database.HashGetAsync(key, "s"))!;
                whole[^1] ^= 1;
                await cluster.Redis.Database.HashSetAsync(key, "s", whole);
                break;
        }

        var read = (await Redis.GetAsync(id, CancellationToken.None)).Record!;
        Assert.Equal(StateChain.DamagedDigest, read.Digest);
        Assert.NotEqual(Ids.Sha256(read.State), read.Digest);
    }

    private static long Expiry() => Now() + (long)TimeSpan.FromHours(1).TotalMilliseconds;

    private static SessionRecord Whole(string id, long version, long epoch, byte n)
        => TestRecords.Checkpoint(id, version, KeyedState.Encode(new Dictionary<string, byte[]> { ["big"] = Big, ["n"] = [n] }), "b1", Now(), epoch);

    private static SessionRecord Delta(string id, long version, long deltaBase, long epoch, byte n)
        => TestRecords.Checkpoint(id, version, KeyedState.EncodeDelta([new("n", [n])])!, "b1", Now(), epoch) with { DeltaBase = deltaBase };

    // Now, so the key's expiry (an hour on) lies ahead.
    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
}
