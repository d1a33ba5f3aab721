using System.Diagnostics;
using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Baton.Gateway.Store;

/// <summary>
/// The fast tier: one Redis hash per session (<c>{prefix}s:{&lt;id&gt;}</c>, the id in braces: v version, s state,
/// d digest, o owner, e epoch, a last access, x expiry, and for deltas stored after the whole state s: n how many, b
/// their bytes, l1..ln each link as <see cref="StateChain.Frame"/> lays it) with the retention as its TTL. The id is the key's hash tag,
/// so on Redis Cluster a session's keys share one slot and every script, which touches KEYS[1] alone, runs on one
/// shard. A plain Redis, one under Sentinel and a cluster are the same to the rest of the gateway. Checkpoints go through a check-and-set
/// script, so an older version never lands over a newer one — not even a write that waited in a client
/// backlog through an outage. Every call has a time budget; past it, or with Redis down, the answer is
/// "unavailable" and the journal carries on alone.
/// </summary>
internal sealed partial class RedisTier : ISessionTier, IHostedService, IAsyncDisposable
{
    // Writes the whole record and its expiry (the tail of the save and refill scripts, after their checks on
    // held = HMGET v e o a x n b). ARGV: 1 version, 2 state, 3 digest, 4 owner, 5 epoch, 6 last access, 7 expiry.
    // A whole state ends the chain of deltas after the one it replaces (and a byte count an older gateway left without
    // one), its links deleted a thousand at a time: Lua unpacks only so many values into one call. Each script makes as
    // few calls as it can (one HMGET, one HSET, one PEXPIREAT, and an HDEL where a chain ends): each call into Redis
    // from a script costs more than the work it does.
    private const string WriteRecord = """

        local links = tonumber(held[6] or '0')
        if links > 0 or held[7] then
            local ended = {'n', 'b'}
            for i = 1, links do
                ended[#ended + 1] = 'l' .. i
                if #ended == 1000 then
                    redis.call('HDEL', KEYS[1], unpack(ended))
                    ended = {}
                end
            end
            if #ended > 0 then redis.call('HDEL', KEYS[1], unpack(ended)) end
        end
        local fields = {'v', ARGV[1], 's', ARGV[2], 'd', ARGV[3], 'e', ARGV[5]}
        """ + WriteOwnerAndTimes + """

        return 1
        """;

    // Adds the owner and times to `fields` and writes them, then the key's expiry. The owner travels with the epoch;
    // last access and expiry never move back.
    private const string WriteOwnerAndTimes = """

        if ARGV[4] ~= '' and (not held[3] or tonumber(held[2] or '0') < tonumber(ARGV[5])) then
            fields[#fields + 1] = 'o'
            fields[#fields + 1] = ARGV[4]
        end
        if tonumber(held[4] or '0') < tonumber(ARGV[6]) then
            fields[#fields + 1] = 'a'
            fields[#fields + 1] = ARGV[6]
        end
        local expiry = held[5]
        if tonumber(expiry or '0') < tonumber(ARGV[7]) then
            expiry = ARGV[7]
            fields[#fields + 1] = 'x'
            fields[#fields + 1] = expiry
        end
        redis.call('HSET', KEYS[1], unpack(fields))
        redis.call('PEXPIREAT', KEYS[1], expiry)
        """;

    // A delta (ARGV 2 its link, 3 its base, 8 its bytes; else as the save script's) lands after the held version when
    // that is of the delta's epoch, at or above its base and below its version: 4 when it cannot apply (nothing held, an
    // older line). Stored, it answers {1, the chain's links, their bytes} (b counts the links' bytes; the first link
    // counts from nothing, whatever count an older gateway's whole state left).
    private const string DeltaScript = """
        local held = redis.call('HMGET', KEYS[1], 'v', 'e', 'o', 'a', 'x', 'n', 'b')
        if not held[1] then return 4 end
        local epoch = tonumber(held[2] or '0')
        if epoch > tonumber(ARGV[5]) then return 2 end
        if tonumber(held[1]) >= tonumber(ARGV[1]) then
            if epoch < tonumber(ARGV[5]) then return 3 end
            return 0
        end
        if epoch < tonumber(ARGV[5]) or tonumber(held[1]) < tonumber(ARGV[3]) then return 4 end
        local links = tonumber(held[6] or '0') + 1
        local bytes = tonumber(ARGV[8])
        if links > 1 then bytes = bytes + tonumber(held[7] or '0') end
        local fields = {'v', ARGV[1], 'l' .. links, ARGV[2], 'n', tostring(links), 'b', tostring(bytes)}
        """ + WriteOwnerAndTimes + """

        return {1, links, bytes}
        """;

    private const string SaveScript = """
        local held = redis.call('HMGET', KEYS[1], 'v', 'e', 'o', 'a', 'x', 'n', 'b')
        if tonumber(held[2] or '0') > tonumber(ARGV[5]) then return 2 end
        if tonumber(held[1] or '-1') >= tonumber(ARGV[1]) then
            if tonumber(held[2] or '0') < tonumber(ARGV[5]) then return 3 end
            return 0
        end
        """ + WriteRecord;

    // A refill from the journal, which is authoritative: it wins over a Redis record of an older epoch (one that
    // missed a move, or took a change the journal fenced) and over an older version of the same epoch.
    private const string RefillScript = """
        local held = redis.call('HMGET', KEYS[1], 'v', 'e', 'o', 'a', 'x')
        local epoch = tonumber(held[2] or '0')
        if held[1] and epoch > tonumber(ARGV[5]) then return 0 end
        if epoch == tonumber(ARGV[5]) and tonumber(held[1] or '-1') >= tonumber(ARGV[1]) then return 0 end
        redis.call('DEL', KEYS[1])
        held = {false, false, false, false, false, false, false}
        """ + WriteRecord;

    // ARGV: 1 owner, 2 epoch, 3 last access, 4 expiry, 5 the empty state's digest.
    private const string MoveScript = """
        redis.call('HSETNX', KEYS[1], 'v', '0')
        redis.call('HSETNX', KEYS[1], 's', '')
        redis.call('HSETNX', KEYS[1], 'd', ARGV[5])
        local held = redis.call('HMGET', KEYS[1], 'e', 'a', 'x')
        if tonumber(ARGV[2]) >= tonumber(held[1] or '-1') then redis.call('HSET', KEYS[1], 'o', ARGV[1], 'e', ARGV[2]) end
        if tonumber(held[2] or '0') < tonumber(ARGV[3]) then redis.call('HSET', KEYS[1], 'a', ARGV[3]) end
        if tonumber(held[3] or '0') < tonumber(ARGV[4]) then redis.call('HSET', KEYS[1], 'x', ARGV[4]) end
        redis.call('PEXPIREAT', KEYS[1], redis.call('HGET', KEYS[1], 'x'))
        return 1
        """;

    // Never lowers the stored last access or expiry (a late touch after a checkpoint), never creates a key.
    private const string TouchScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        local held = redis.call('HMGET', KEYS[1], 'a', 'x')
        if tonumber(held[1] or '0') < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'a', ARGV[1]) end
        if tonumber(held[2] or '0') < tonumber(ARGV[2]) then
            redis.call('HSET', KEYS[1], 'x', ARGV[2])
            redis.call('PEXPIREAT', KEYS[1], ARGV[2])
        end
        return 1
        """;

    private readonly ConfigurationOptions? _configuration;
    private Task<ConnectionMultiplexer>? _connecting;
    private long _firstMissedWrite;
    private long _missedWrites;
    private long _confirmedAt = -1;
    private readonly string _prefix;
    private readonly RedisChannel _pinChannel;
    private readonly string _markerPrefix;

    // The marker of each primary (one on a plain Redis) as the last identification found them, for MarkAsync.
    private RedisKey[] _markers = [];
    private readonly TimeSpan _identifyTimeout = TimeSpan.FromSeconds(2);
    private readonly TimeProvider _time;
    private readonly CancellationTokenSource _disposing = new();
    private readonly int _circuitFailures;
    private readonly TimeSpan _circuitBreak;
    private int _consecutiveFailures;
    private int _disposed;
    private long _circuitOpenUntil;
    private readonly TimeSpan _budget;
    private readonly BatonMetrics _metrics;
    private readonly ILogger<RedisTier> _logger;

    public RedisTier(IOptions<BatonOptions> options, TimeProvider time, BatonMetrics metrics, ILogger<RedisTier> logger)
    {
        var settings = options.Value;
        _time = time;
        _circuitFailures = settings.Store.RedisCircuitFailures;
        _circuitBreak = settings.Store.RedisCircuitBreak;
        _prefix = settings.Store.RedisKeyPrefix + "s:";
        _markerPrefix = settings.Store.RedisKeyPrefix + "marker:";
        _pinChannel = RedisChannel.Literal(settings.Store.RedisKeyPrefix + "pins");
        _budget = settings.Store.RedisBudget;
        _metrics = metrics;
        _logger = logger;
        if (string.IsNullOrWhiteSpace(settings.Store.Redis))
        {
            return;
        }

        _configuration = ConfigurationOptions.Parse(settings.Store.Redis);

        // Start and serve without Redis; reconnect in the background; never queue writes through an outage.
        _configuration.AbortOnConnectFail = false;
        _configuration.BacklogPolicy = BacklogPolicy.FailFast;

        // INFO (the server's run id, to notice a restart or a promoted replica) is an admin command to the client.
        _configuration.AllowAdmin = true;

        // Complete Redis calls on the .NET thread pool rather than the client's own dedicated threads: fewer
        // threads and context switches competing with the requests on a small machine.
        _configuration.SocketManager = SocketManager.ThreadPool;
    }

    public string Name => "redis";

    /// <summary>Starts connecting in the background: startup never waits for Redis.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_configuration is not null)
        {
            _connecting = ConnectAsync(_configuration);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Redis is never full here: its memory limit and eviction are its own.</summary>
    public bool IsFull => false;

    /// <summary>True when a Redis tier is configured at all.</summary>
    public bool IsConfigured => _configuration is not null;

    /// <summary>True when configured and connected now.</summary>
    public bool IsConnected => Connection?.IsConnected == true;

    /// <summary>True while calls skip Redis after repeated misses (<c>Baton:Store:RedisCircuitBreak</c>).</summary>
    public bool IsCircuitOpen => _time.GetTimestamp() < Volatile.Read(ref _circuitOpenUntil);

    /// <summary>
    /// True when connected and confirmed to hold every write since the connection was last lost or a write
    /// last missed it (<see cref="ConfirmCurrent"/>): only then may Redis answer for a write alone. A Redis that
    /// missed a session's move could take the old owner's change.
    /// </summary>
    public bool IsCurrent => IsConnected && Volatile.Read(ref _confirmedAt) == Interlocked.Read(ref _missedWrites);

    /// <summary>Counts writes Redis missed and connections it lost; read before checking it, for <see cref="ConfirmCurrent"/>.</summary>
    public long MissedWrites => Interlocked.Read(ref _missedWrites);

    /// <summary>Redis held every write up to when <paramref name="missedWrites"/> was read (nothing missed since, if still equal).</summary>
    public void ConfirmCurrent(long missedWrites) => Volatile.Write(ref _confirmedAt, missedWrites);

    // Null until the first connection attempt has finished: startup never waits for Redis.
    private ConnectionMultiplexer? Connection => _connecting is { IsCompletedSuccessfully: true } ? _connecting.Result : null;

    /// <summary>
    /// Waits (on the wall clock: a network wait) at most <paramref name="timeout"/> for Redis to be connected;
    /// false when it is not configured or not connected by then.
    /// </summary>
    public async Task<bool> WaitAvailableAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        while (_configuration is not null && !IsConnected && Stopwatch.GetElapsedTime(started) < timeout)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
        }

        return IsConnected;
    }

    public async Task<SaveOutcome> CheckpointAsync(SessionRecord record, CheckpointReport? report = null)
    {
        var (ok, result) = record.DeltaBase is { } deltaBase
            ? await CallAsync("save", db => db.ScriptEvaluateAsync(DeltaScript, [Key(record.SessionId)], DeltaArguments(record, deltaBase)))
            : await CallAsync("save", db => db.ScriptEvaluateAsync(SaveScript, [Key(record.SessionId)], RecordArguments(record)));
        if (!ok)
        {
            return SaveOutcome.Unavailable;
        }

        if (result.Resp2Type == ResultType.Array && result.Length == 3)
        {
            // A stored delta, with the chain it ends.
            report?.NoteChain((long)result[1], (long)result[2]);
            return SaveOutcome.Stored;
        }

        return (long)result switch { 1 => SaveOutcome.Stored, 2 => SaveOutcome.Fenced, 3 => SaveOutcome.Diverged, 4 => SaveOutcome.Unapplicable, _ => SaveOutcome.Stale };
    }

    /// <summary>Writes the journal's record of a session unless Redis holds it or a newer one; true when written, null when unavailable.</summary>
    public async Task<bool?> RefillAsync(SessionRecord record)
    {
        var (ok, result) = await CallAsync("refill", db => db.ScriptEvaluateAsync(RefillScript, [Key(record.SessionId)], RecordArguments(record)));
        return ok ? (long)result == 1 : null;
    }

    /// <summary>Notes that Redis may have missed writes since <paramref name="since"/> (Unix ms), unless an earlier miss is noted.</summary>
    public void NoteMissedWrite(long since)
    {
        var current = Interlocked.Read(ref _firstMissedWrite);
        while ((current == 0 || since < current) && Interlocked.CompareExchange(ref _firstMissedWrite, since, current) is var seen && seen != current)
        {
            current = seen;
        }
    }

    /// <summary>
    /// When Redis first missed a write (Unix milliseconds) since the last call, or null when it missed none:
    /// sessions written since then may be newer in the journal than in Redis.
    /// </summary>
    public long? TakeFirstMissedWrite()
    {
        var first = Interlocked.Exchange(ref _firstMissedWrite, 0);
        return first == 0 ? null : first;
    }

    public async Task<WriteOutcome> MoveAsync(string sessionId, string owner, long epoch, long lastAccess, long expiresAt)
        => Written(await CallAsync("pin", db => db.ScriptEvaluateAsync(MoveScript, [Key(sessionId)], [owner, epoch, lastAccess, expiresAt, SessionRecord.EmptyDigest])));

    public async Task<WriteOutcome> TouchAsync(string sessionId, long lastAccess, long expiresAt)
        => Written(await CallAsync("touch", db => db.ScriptEvaluateAsync(TouchScript, [Key(sessionId)], [lastAccess, expiresAt])));

    public async Task<WriteOutcome> EndAsync(string sessionId) => Written(await CallAsync("delete", db => db.KeyDeleteAsync(Key(sessionId))));

    /// <summary>Nothing to do: every key carries its expiry.</summary>
    public Task<int?> PurgeAsync(long now) => Task.FromResult<int?>(0);

    private static WriteOutcome Written<T>((bool Ok, T Result) call) => call.Ok ? WriteOutcome.Written : WriteOutcome.Unavailable;

    /// <summary>
    /// Who the connected Redis is: its run id (new on every restart, different on a promoted replica) and
    /// whether Baton's marker key is still there (gone when Redis lost its data). On a cluster, every primary's: the
    /// sorted run ids of all of them, so a restart or a promotion in any shard changes it (a promoted replica may lack
    /// writes its primary acknowledged), and a marker in each shard. Null when not connected, or while a slot has no
    /// primary that answers (mid-failover: the next check sees the promoted replica).
    /// </summary>
    public async Task<(string RunId, bool MarkerPresent)?> IdentifyAsync()
    {
        var redis = Connection;
        if (redis is null || !redis.IsConnected)
        {
            return null;
        }

        try
        {
            if (await PrimariesAsync(redis) is not { } primaries)
            {
                return null;
            }

            var runIds = new List<string>(primaries.Count);
            foreach (var (server, _) in primaries)
            {
                var info = await server.InfoAsync("server").WaitAsync(_identifyTimeout);
                runIds.Add(info.SelectMany(group => group).FirstOrDefault(pair => pair.Key == "run_id").Value ?? string.Empty);
            }

            runIds.Sort(StringComparer.Ordinal);
            var markers = primaries.Select(primary => MarkerKey(redis, primary.FirstSlot)).ToArray();
            var present = await Task.WhenAll(markers.Select(marker => redis.GetDatabase().KeyExistsAsync(marker))).WaitAsync(_identifyTimeout);
            _markers = markers;
            return (string.Join(',', runIds), present.All(exists => exists));
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            Log.RedisCallFailed(_logger, "identify", ex);
            return null;
        }
    }

    // The servers that hold the data, each with the first slot it serves (none outside a cluster): the one primary of a
    // plain or Sentinel-managed Redis; every primary that serves slots on a cluster, from the cluster's own current
    // view, or null while one is failing or out of reach or a slot has no primary.
    private async Task<List<(IServer Server, int FirstSlot)>?> PrimariesAsync(ConnectionMultiplexer redis)
    {
        var servers = redis.GetServers();
        if (!servers.Any(server => server.ServerType == ServerType.Cluster))
        {
            return servers.FirstOrDefault(s => s.IsConnected && !s.IsReplica) is { } primary ? [(primary, NoSlot)] : null;
        }

        var asked = servers.FirstOrDefault(s => s.IsConnected && !s.IsReplica) ?? servers.FirstOrDefault(s => s.IsConnected);
        if (asked is null || await asked.ClusterNodesAsync().WaitAsync(_identifyTimeout) is not { } cluster)
        {
            return null;
        }

        var owners = cluster.Nodes.Where(node => !node.IsReplica && node.Slots.Count > 0).ToList();
        if (owners.Any(node => node.IsFail || node.IsPossiblyFail || node.EndPoint is null)
            || owners.Sum(node => node.Slots.Sum(range => range.To - range.From + 1)) < ClusterSlots)
        {
            return null;
        }

        var primaries = new List<(IServer, int)>(owners.Count);
        foreach (var node in owners)
        {
            var server = servers.FirstOrDefault(s => Equals(s.EndPoint, node.EndPoint));
            if (server is not { IsConnected: true })
            {
                return null;
            }

            primaries.Add((server, node.Slots.Min(range => range.From)));
        }

        return primaries;
    }

    private const int ClusterSlots = 16384;
    private const int NoSlot = -1;

    // Hash tags found so far for the slots that held a marker: a marker's slot decides its shard.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, RedisKey> _markerBySlot = new();

    // {prefix}marker:{n}: the first n whose hash tag falls in the slot, so the key lives on the shard that serves it
    // ({prefix}marker:{0} outside a cluster). Some n below a million hashes to each of the 16384 slots.
    private RedisKey MarkerKey(ConnectionMultiplexer redis, int slot) => _markerBySlot.GetOrAdd(slot, wanted =>
    {
        for (var n = 0; wanted != NoSlot && n < 1_000_000; n++)
        {
            RedisKey key = $"{_markerPrefix}{{{n}}}";
            if (redis.HashSlot(key) == wanted)
            {
                return key;
            }
        }

        return $"{_markerPrefix}{{0}}";
    });

    /// <summary>
    /// Every live session Redis holds, read a page of keys at once (pipelined), for a starting gateway; empty when
    /// Redis is not connected. Reads Redis does not answer are counted in <see cref="TierScan.Skipped"/>.
    /// </summary>
    public TierScan ScanLive(long cutoff) => new(scan => ScanAsync(scan, cutoff));

    /// <summary>Sets the markers (one per primary) whose absence later tells that Redis lost what it held.</summary>
    public async Task<bool> MarkAsync()
    {
        var markers = _markers;
        var (ok, set) = await CallAsync("mark", db => Task.WhenAll(markers.Select(marker => db.StringSetAsync(marker, "1"))));
        return ok && set.Length > 0 && set.All(written => written);
    }

    public async Task<TierRead> GetAsync(string sessionId, CancellationToken cancellationToken)
    {
        var (ok, fields) = await CallAsync("get", db => db.HashGetAllAsync(Key(sessionId)));
        return ok ? new TierRead(true, Parse(sessionId, fields)) : TierRead.Unavailable;
    }

    private static SessionRecord? Parse(string sessionId, HashEntry[] fields)
    {
        var map = fields.ToDictionary(f => (string)f.Name!, f => f.Value, StringComparer.Ordinal);
        if (!map.TryGetValue("v", out var version) || !map.TryGetValue("s", out var value))
        {
            return null;
        }

        var snapshot = (byte[]?)value ?? [];
        var (state, digest) = StateChain.Fold(
            snapshot,
            map.TryGetValue("d", out var stored) && stored.HasValue ? (string)stored! : Baton.Protocol.Ids.Sha256(snapshot),
            Links(map) ?? [new DeltaLink([], StateChain.DamagedDigest)]);
        return new SessionRecord(
            sessionId,
            map.TryGetValue("o", out var owner) && owner.HasValue ? (string?)owner : null,
            Number(map, "e"),
            (long)version,
            state,
            digest,
            Number(map, "a"),
            Number(map, "x"));

        static long Number(Dictionary<string, RedisValue> map, string field) => map.TryGetValue(field, out var number) && number.HasValue ? (long)number : 0;

        // The links l1..ln in order; null when one is missing or not a link (the record is then damaged).
        static List<DeltaLink>? Links(Dictionary<string, RedisValue> map)
        {
            var links = new List<DeltaLink>();
            for (var i = 1L; i <= Number(map, "n"); i++)
            {
                if (!map.TryGetValue("l" + i.ToString(System.Globalization.CultureInfo.InvariantCulture), out var frame)
                    || StateChain.ReadLink((byte[]?)frame ?? []) is not { } link)
                {
                    return null;
                }

                links.Add(link);
            }

            return links;
        }
    }

    // Once: the container disposes the tier both as itself and as the hosted service it also is.
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _disposing.CancelAsync();
        if (_connecting is { IsCompletedSuccessfully: true })
        {
            var redis = _connecting.Result;
            await redis.CloseAsync();
            await redis.DisposeAsync();
        }

        _disposing.Dispose();
    }

    // abortConnect=false makes an unreachable Redis a background reconnect, but some first contacts still
    // throw (a sentinel that cannot name its primary yet): try again, with backoff, until it works.
    private async Task<ConnectionMultiplexer> ConnectAsync(ConfigurationOptions configuration)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (true)
        {
            try
            {
                var redis = await ConnectionMultiplexer.ConnectAsync(configuration);
                redis.ConnectionFailed += (_, e) =>
                {
                    Interlocked.Increment(ref _missedWrites);
                    Log.RedisConnectionFailed(_logger, e.EndPoint?.ToString() ?? "?", e.FailureType.ToString());
                };
                redis.ConnectionRestored += (_, e) => Log.RedisConnectionRestored(_logger, e.EndPoint?.ToString() ?? "?");
                if (!redis.IsConnected)
                {
                    Log.RedisConnectionFailed(_logger, configuration.ToString(includePassword: false), "initial connect");
                }

                return redis;
            }
            catch (RedisException ex)
            {
                Log.RedisCallFailed(_logger, "connect", ex);
                await Task.Delay(backoff, _time, _disposing.Token);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
            }
        }
    }

    private RedisKey Key(string sessionId) => $"{_prefix}{{{sessionId}}}";

    // ARGV of the save and refill scripts (see WriteRecord).
    private static RedisValue[] RecordArguments(SessionRecord record)
        => [record.Version, record.State, record.Digest, record.Owner ?? string.Empty, record.Epoch, record.LastAccess, record.ExpiresAt];

    // ARGV of the delta script.
    private static RedisValue[] DeltaArguments(SessionRecord record, long deltaBase)
        => [record.Version, StateChain.Frame(record.State, record.Digest), deltaBase, record.Owner ?? string.Empty, record.Epoch, record.LastAccess, record.ExpiresAt, record.State.Length];

    // Small enough that a page of reads in flight stays within the per-call budget of a loaded Redis.
    private const int ScanPage = 100;

    private static readonly TimeSpan ScanReadTimeout = TimeSpan.FromSeconds(5);

    // Every primary's keys: the one primary's, or on a cluster each shard's primary in turn. A shard whose primary
    // is out of reach counts as one session skipped (the scan cannot tell how many it holds).
    private async IAsyncEnumerable<SessionSummary> ScanAsync(TierScan scan, long cutoff)
    {
        var redis = Connection;
        if (redis is null)
        {
            yield break;
        }

        var servers = redis.GetServers();
        List<IServer> primaries;
        if (servers.Any(server => server.ServerType == ServerType.Cluster))
        {
            primaries = [.. servers.Where(s => s.IsConnected && !s.IsReplica)];
            scan.Skipped += primaries.Count == 0 ? 1 : await UnreachablePrimariesAsync(primaries);
        }
        else
        {
            primaries = servers.FirstOrDefault(s => s.IsConnected && !s.IsReplica) is { } primary ? [primary] : [];
        }

        // {prefix}s:{<id>} only: an unbraced key an earlier version wrote ({prefix}s:<id>) is never read, and expires by its TTL.
        var pattern = _prefix + "{*}";
        var page = new List<string>(ScanPage);
        foreach (var server in primaries)
        {
            await foreach (var key in server.KeysAsync(pattern: pattern, pageSize: ScanPage))
            {
                page.Add(((string)key!)[(_prefix.Length + 1)..^1]);
                if (page.Count == ScanPage)
                {
                    foreach (var record in await ReadPageAsync(scan, page, cutoff))
                    {
                        yield return record;
                    }

                    page.Clear();
                }
            }
        }

        foreach (var record in await ReadPageAsync(scan, page, cutoff))
        {
            yield return record;
        }
    }

    // Primaries in the cluster's own view that serve slots but are not among those scanned (down, not yet known).
    private async Task<int> UnreachablePrimariesAsync(List<IServer> scanned)
    {
        try
        {
            var cluster = await scanned[0].ClusterNodesAsync().WaitAsync(_identifyTimeout);
            return cluster?.Nodes.Count(node => !node.IsReplica && node.Slots.Count > 0 && !scanned.Any(s => Equals(s.EndPoint, node.EndPoint))) ?? 1;
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return 1;
        }
    }

    private async Task<List<SessionSummary>> ReadPageAsync(TierScan scan, List<string> ids, long cutoff)
    {
        var reads = await Task.WhenAll(ids.Select(ScanReadAsync));
        scan.Skipped += reads.Count(read => !read.Available);
        return [.. reads.Where(read => read.Record is { } r && r.LastAccess >= cutoff).Select(read => read.Record!.Summary)];
    }

    // Not a request's read: a wait of its own (not the per-request budget, which a starting process's first
    // calls can miss) and no part in the circuit.
    private async Task<TierRead> ScanReadAsync(string id)
    {
        try
        {
            var fields = await Connection!.GetDatabase().HashGetAllAsync(Key(id)).WaitAsync(ScanReadTimeout);
            return new TierRead(true, Parse(id, fields));
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            return TierRead.Unavailable;
        }
    }

    private async Task<(bool Ok, T Result)> CallAsync<T>(string operation, Func<IDatabase, Task<T>> call)
    {
        if (_configuration is null)
        {
            return (false, default!);
        }

        var redis = Connection;
        if (redis is null || !redis.IsConnected)
        {
            _metrics.RedisUnavailable(operation, "disconnected");
            Missed(operation);
            return (false, default!);
        }

        var now = _time.GetTimestamp();
        if (now < Volatile.Read(ref _circuitOpenUntil))
        {
            _metrics.RedisUnavailable(operation, "circuit_open");
            Missed(operation);
            return (false, default!);
        }

        try
        {
            var result = await call(redis.GetDatabase()).WaitAsync(_budget);
            Volatile.Write(ref _consecutiveFailures, 0);
            return (true, result);
        }
        catch (TimeoutException)
        {
            _metrics.RedisUnavailable(operation, "budget");
            Log.RedisOverBudget(_logger, operation, _budget);
            Failed();
            Missed(operation);
            return (false, default!);
        }
        catch (Exception ex)
        {
            // Whatever a failing Redis throws (its own errors, a socket's, a disposed connection's), the tier is
            // only unavailable: the journal carries on, and the request is never failed for it.
            _metrics.RedisUnavailable(operation, "error");
            Log.RedisCallFailed(_logger, operation, ex);
            Failed();
            Missed(operation);
            return (false, default!);
        }
    }

    // A write Redis did not take (or may not have taken): from then on Redis may be behind the journal.
    private void Missed(string operation)
    {
        if (operation is "save" or "pin" or "touch" or "refill")
        {
            // When first, then how many: a check that sees the new count also finds the miss to refill.
            Interlocked.CompareExchange(ref _firstMissedWrite, _time.GetUtcNow().ToUnixTimeMilliseconds(), 0);

            // A missed touch only leaves a last use older (the journal's is read at startup): Redis stays current.
            if (operation != "touch")
            {
                Interlocked.Increment(ref _missedWrites);
            }
        }
    }

    // After CircuitFailures calls in a row miss their budget or fail, nobody waits on Redis for
    // CircuitBreak; after that, calls try it again.
    private void Failed()
    {
        if (Interlocked.Increment(ref _consecutiveFailures) >= _circuitFailures)
        {
            Volatile.Write(ref _consecutiveFailures, 0);
            Volatile.Write(ref _circuitOpenUntil, _time.GetTimestamp() + (long)(_circuitBreak.TotalSeconds * _time.TimestampFrequency));
            Log.RedisCircuitOpened(_logger, _circuitBreak);
        }
    }
}
