using System.Diagnostics;
using Baton.LoadTest;
using StackExchange.Redis;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real Sentinel-managed Redis on loopback: a primary, a replica and one redis-sentinel that promotes
/// the replica when the primary dies.
/// </summary>
public sealed class RedisSentinelSet : IAsyncLifetime
{
    public const string ServiceName = "baton";
    private readonly List<ManagedProcess> _processes = [];
    private ManagedProcess? _primary;
    private ManagedProcess? _replica;
    private bool _replicaPaused;

    public int PrimaryPort { get; private set; }

    public int ReplicaPort { get; private set; }

    public int SentinelPort { get; private set; }

    /// <summary>The gateway's <c>Baton:Redis</c>: through the sentinel, by service name.</summary>
    public string Configuration => $"127.0.0.1:{SentinelPort},serviceName={ServiceName}";

    public async Task InitializeAsync()
    {
        (PrimaryPort, ReplicaPort, SentinelPort) = (ManagedProcess.FreePort(), ManagedProcess.FreePort(), ManagedProcess.FreePort());
        _primary = await StartAsync(TestServers.Redis("primary", PrimaryPort));
        _replica = await StartAsync(TestServers.Redis("replica", ReplicaPort, "--replicaof", "127.0.0.1", PrimaryPort.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        await using (var replica = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{ReplicaPort},allowAdmin=true,abortConnect=false"))
        {
            await Eventually.TrueAsync(
                async () => replica.IsConnected && (await replica.GetServers()[0].InfoRawAsync("replication"))?.Contains("master_link_status:up", StringComparison.Ordinal) == true,
                TimeSpan.FromSeconds(20),
                "the replica should be in sync with the primary");
        }

        var folder = TestPaths.NewFolder("sentinel");
        var config = Path.Combine(folder, "sentinel.conf");
        await File.WriteAllTextAsync(config, $"""
            port {SentinelPort}
            bind 127.0.0.1
            dir {folder}
            sentinel monitor {ServiceName} 127.0.0.1 {PrimaryPort} 1
            sentinel down-after-milliseconds {ServiceName} 1000
            sentinel failover-timeout {ServiceName} 5000
            sentinel parallel-syncs {ServiceName} 1
            """);
        await StartAsync(TestServers.Managed("sentinel", "sentinel", SentinelPort, () => new ProcessStartInfo("redis-sentinel") { ArgumentList = { config } }, ct => ManagedProcess.AcceptsAsync(SentinelPort, ct)));

        // A sentinel promotes only replicas it has discovered (from the primary's INFO): wait until it knows ours.
        var sentinelOptions = new ConfigurationOptions { EndPoints = { $"127.0.0.1:{SentinelPort}" }, CommandMap = CommandMap.Sentinel, AllowAdmin = true, AbortOnConnectFail = false, TieBreaker = string.Empty };
        await using var sentinel = await ConnectionMultiplexer.ConnectAsync(sentinelOptions);
        await Eventually.TrueAsync(
            async () =>
            {
                if (!sentinel.IsConnected)
                {
                    return false;
                }

                var replicas = await sentinel.GetServers()[0].SentinelReplicasAsync(ServiceName);
                return replicas.Any(r => r.Any(p => p.Key == "port" && p.Value == ReplicaPort.ToString(System.Globalization.CultureInfo.InvariantCulture))
                    && r.Any(p => p.Key == "flags" && p.Value == "slave"));
            },
            TimeSpan.FromSeconds(30),
            "the sentinel should know the replica it would promote");
    }

    /// <summary>
    /// Cuts the replication: the replica stopped (SIGSTOP) and its link dropped by the primary, so every write the
    /// primary acknowledges from now on is one the replica never receives. <see cref="KillPrimaryAsync"/> lets the
    /// replica go on.
    /// </summary>
    public async Task CutReplicationAsync()
    {
        _replica!.Pause();
        _replicaPaused = true;
        var options = new ConfigurationOptions { EndPoints = { $"127.0.0.1:{PrimaryPort}" }, AllowAdmin = true, AbortOnConnectFail = false };
        await using var primary = await ConnectionMultiplexer.ConnectAsync(options);
        var server = primary.GetServer($"127.0.0.1:{PrimaryPort}");
        await server.ExecuteAsync("CLIENT", "KILL", "TYPE", "replica");
        await Eventually.TrueAsync(
            async () => (await server.InfoRawAsync("replication"))?.Contains("connected_slaves:0", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(10),
            "the primary should have no replica left");
    }

    /// <summary>kill -9 of the primary: the sentinel promotes the replica (one stopped by <see cref="CutReplicationAsync"/> goes on).</summary>
    public Task KillPrimaryAsync()
    {
        _primary!.Kill();
        if (_replicaPaused)
        {
            _replica!.Resume();
            _replicaPaused = false;
        }

        return Task.CompletedTask;
    }

    /// <summary>A direct client to the replica (the primary once promoted).</summary>
    public ConnectionMultiplexer ConnectToReplica() => ConnectionMultiplexer.Connect($"127.0.0.1:{ReplicaPort},abortConnect=false");

    public Task DisposeAsync()
    {
        foreach (var process in _processes)
        {
            process.Dispose();
        }

        return Task.CompletedTask;
    }

    private async Task<ManagedProcess> StartAsync(ManagedProcess process)
    {
        _processes.Add(process);
        await TestServers.StartAsync(process);
        return process;
    }
}
