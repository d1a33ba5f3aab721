using System.Diagnostics;
using System.Globalization;
using Baton.LoadTest;
using StackExchange.Redis;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real Redis Cluster on loopback: three primaries with one replica each, every node a redis-server of its own
/// (no persistence, a folder of its own, its cluster bus on a free port too), made by <c>redis-cli --cluster create</c>.
/// A node is judged failing after <c>cluster-node-timeout</c> 1 s, so a killed primary's replica takes over within a
/// few seconds. Every process is killed when disposed.
/// </summary>
public sealed class RedisClusterSet : IAsyncLifetime
{
    private const int Shards = 3;
    private static readonly TimeSpan FormTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan FailoverTimeout = TimeSpan.FromSeconds(30);

    private readonly Dictionary<int, ManagedProcess> _nodes = [];
    private readonly HashSet<int> _paused = [];
    private ConnectionMultiplexer? _client;

    /// <summary>The ports of every node, primaries and replicas, as created.</summary>
    public IReadOnlyList<int> Ports => [.. _nodes.Keys];

    /// <summary>The gateway's <c>Baton:Redis</c>: every node as a seed (the client learns the layout from any of them).</summary>
    public string Configuration => string.Join(',', _nodes.Keys.Select(port => $"127.0.0.1:{port}"));

    /// <summary>A client of the cluster, for looking at what the gateway wrote (it follows the slots as they move).</summary>
    public IDatabase Database => _client!.GetDatabase();

    public async Task InitializeAsync()
    {
        for (var i = 0; i < Shards * 2; i++)
        {
            var port = ManagedProcess.FreePort();
            var busPort = ManagedProcess.FreePort();
            var node = TestServers.Redis($"cluster-{i}", port,
                "--cluster-enabled", "yes", "--cluster-port", Invariant(busPort), "--cluster-node-timeout", "1000",

                // A replica takes over however long ago it last heard from its primary: the tests kill primaries
                // and look at what the promoted replica holds, they never partition it.
                "--cluster-replica-validity-factor", "0");
            _nodes.Add(port, node);
            await TestServers.StartAsync(node);
        }

        var create = new ProcessStartInfo("redis-cli") { ArgumentList = { "--cluster", "create" } };
        foreach (var port in _nodes.Keys)
        {
            create.ArgumentList.Add($"127.0.0.1:{port}");
        }

        create.ArgumentList.Add("--cluster-replicas");
        create.ArgumentList.Add("1");
        create.ArgumentList.Add("--cluster-yes");
        await TestServers.SetUpAsync(create);

        // Fail fast: a question to a killed node is answered "no" at once, not queued until it comes back.
        var options = ConfigurationOptions.Parse(Configuration);
        options.AllowAdmin = true;
        options.AbortOnConnectFail = false;
        options.BacklogPolicy = BacklogPolicy.FailFast;
        options.AsyncTimeout = 2000;
        _client = await ConnectionMultiplexer.ConnectAsync(options);
        await Eventually.TrueAsync(
            async () => (await Task.WhenAll(_nodes.Keys.Select(IsFormedAsync))).All(formed => formed),
            FormTimeout,
            "every node should see the cluster whole: three primaries serving all slots, each with a replica in sync");
    }

    /// <summary>The port of the primary that serves the key's slot, as the cluster itself says now.</summary>
    public async Task<int> PrimaryOfAsync(string key)
    {
        var slot = _client!.HashSlot(key);
        var nodes = await ClusterNodesAsync();
        return nodes.Nodes.First(node => !node.IsReplica && !node.IsFail && node.Slots.Any(range => range.From <= slot && slot <= range.To)).EndPoint.Port();
    }

    /// <summary>How many of the keys each primary (by port) holds: asked of every primary itself, not through routing.</summary>
    public async Task<Dictionary<int, int>> KeysPerPrimaryAsync(IEnumerable<string> keys)
    {
        var counts = new Dictionary<int, int>();
        foreach (var key in keys)
        {
            var port = await PrimaryOfAsync(key);
            counts[port] = counts.GetValueOrDefault(port) + 1;
        }

        return counts;
    }

    /// <summary>
    /// Cuts the replication of the key's shard: its replica stopped (SIGSTOP) and its link dropped by the primary, so
    /// every write the primary acknowledges from now on is one the replica never receives (a replica that lags, at
    /// its worst). <see cref="KillPrimaryOfAsync"/> lets the replica go on.
    /// </summary>
    public async Task CutReplicationOfAsync(string key)
    {
        var (primary, replica) = await ShardOfAsync(key);
        _nodes[replica].Pause();
        _paused.Add(replica);
        await _client!.GetServer("127.0.0.1", primary).ExecuteAsync("CLIENT", "KILL", "TYPE", "replica");
        await Eventually.TrueAsync(
            async () => (await _client.GetServer("127.0.0.1", primary).InfoRawAsync("replication"))?.Contains("connected_slaves:0", StringComparison.Ordinal) == true,
            FailoverTimeout,
            "the primary should have no replica left");
    }

    /// <summary>
    /// kill -9 of the primary serving the key's slot (a replica stopped by <see cref="CutReplicationOfAsync"/> goes on);
    /// returns once its replica is the primary of that slot in every surviving node's view and the cluster serves all
    /// slots again. Returns the killed primary's port.
    /// </summary>
    public async Task<int> KillPrimaryOfAsync(string key)
    {
        var (primary, replica) = await ShardOfAsync(key);
        _nodes[primary].Kill();
        foreach (var port in _paused)
        {
            _nodes[port].Resume();
        }

        _paused.Clear();

        var slot = _client!.HashSlot(key);
        await Eventually.TrueAsync(
            async () => (await Task.WhenAll(_nodes.Keys.Where(port => port != primary).Select(async port =>
            {
                var info = await ClusterAsync(port, "INFO");
                return info?.Contains("cluster_state:ok", StringComparison.Ordinal) == true
                    && await NodesSeenByAsync(port) is { } view
                    && view.Nodes.Any(node => node.EndPoint.Port() == replica && !node.IsReplica && node.Slots.Any(range => range.From <= slot && slot <= range.To));
            }))).All(promoted => promoted),
            FailoverTimeout,
            $"the replica on port {replica} should take over the slots of the primary on port {primary}");
        return primary;
    }

    public async Task DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        foreach (var node in _nodes.Values)
        {
            node.Dispose();
        }
    }

    // The primary serving the key's slot and its replica, by port.
    private async Task<(int Primary, int Replica)> ShardOfAsync(string key)
    {
        var primary = await PrimaryOfAsync(key);
        var nodes = await ClusterNodesAsync();
        var primaryId = nodes.Nodes.First(node => node.EndPoint.Port() == primary).NodeId;
        return (primary, nodes.Nodes.First(node => node.IsReplica && node.ParentNodeId == primaryId).EndPoint.Port());
    }

    // The cluster as the first running node that answers sees it.
    private async Task<ClusterConfiguration> ClusterNodesAsync()
    {
        foreach (var port in _nodes.Keys.Where(port => _nodes[port].IsRunning && !_paused.Contains(port)))
        {
            if (await NodesSeenByAsync(port) is { } view)
            {
                return view;
            }
        }

        throw new InvalidOperationException("No node of the cluster answers CLUSTER NODES.");
    }

    // One node's own view (the command goes to that node, never routed); null when it does not answer.
    private async Task<ClusterConfiguration?> NodesSeenByAsync(int port)
    {
        try
        {
            return await _client!.GetServer("127.0.0.1", port).ClusterNodesAsync();
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return null;
        }
    }

    private async Task<string?> ClusterAsync(int port, string subcommand)
    {
        try
        {
            return (string?)await _client!.GetServer("127.0.0.1", port).ExecuteAsync("CLUSTER", subcommand);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return null;
        }
    }

    private async Task<bool> IsFormedAsync(int port)
    {
        var info = await ClusterAsync(port, "INFO");
        if (info is null || !info.Contains("cluster_state:ok", StringComparison.Ordinal) || !info.Contains($"cluster_known_nodes:{Shards * 2}", StringComparison.Ordinal)
            || await NodesSeenByAsync(port) is not { } view)
        {
            return false;
        }

        var primaries = view.Nodes.Where(node => !node.IsReplica && node.Slots.Count > 0).ToList();
        var replicas = view.Nodes.Where(node => node.IsReplica).ToList();
        if (primaries.Count != Shards || !primaries.All(primary => replicas.Any(replica => replica.ParentNodeId == primary.NodeId)))
        {
            return false;
        }

        // A replica in sync: its link to its primary is up.
        var myself = view.Nodes.First(node => node.IsMyself);
        return !myself.IsReplica
            || (await _client!.GetServer("127.0.0.1", port).InfoRawAsync("replication"))?.Contains("master_link_status:up", StringComparison.Ordinal) == true;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Ports of the endpoints a cluster's nodes name (always IP and port here).</summary>
internal static class EndPointPorts
{
    public static int Port(this System.Net.EndPoint? endPoint) => endPoint switch
    {
        System.Net.IPEndPoint ip => ip.Port,
        System.Net.DnsEndPoint dns => dns.Port,
        _ => throw new InvalidOperationException($"Not an address with a port: {endPoint}"),
    };
}
