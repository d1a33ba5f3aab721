using System.Diagnostics;
using StackExchange.Redis;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real Sentinel-managed Redis on loopback: a primary, a replica and one redis-sentinel that promotes
/// the replica when the primary dies.
/// </summary>
public sealed class RedisSentinelSet : IAsyncLifetime
{
    public const string ServiceName = "baton";
    private readonly List<Process> _processes = [];
    private Process? _primary;

    public int PrimaryPort { get; private set; }

    public int ReplicaPort { get; private set; }

    public int SentinelPort { get; private set; }

    /// <summary>The gateway's <c>Baton:Redis</c>: through the sentinel, by service name.</summary>
    public string Configuration => $"127.0.0.1:{SentinelPort},serviceName={ServiceName}";

    public async Task InitializeAsync()
    {
        (PrimaryPort, ReplicaPort, SentinelPort) = (TestProcesses.FreePort(), TestProcesses.FreePort(), TestProcesses.FreePort());
        _primary = StartRedis(PrimaryPort);
        await TestProcesses.WaitForListenerAsync(PrimaryPort, "the primary");
        StartRedis(ReplicaPort, "--replicaof", "127.0.0.1", PrimaryPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await TestProcesses.WaitForListenerAsync(ReplicaPort, "the replica");
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
        _processes.Add(TestProcesses.Start(new ProcessStartInfo("redis-sentinel") { ArgumentList = { config } }));
        await TestProcesses.WaitForListenerAsync(SentinelPort, "redis-sentinel");

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

    /// <summary>kill -9 of the primary: the sentinel promotes the replica.</summary>
    public async Task KillPrimaryAsync()
    {
        _processes.Remove(_primary!);
        await TestProcesses.StopAsync(_primary!);
    }

    /// <summary>A direct client to the replica (the primary once promoted).</summary>
    public ConnectionMultiplexer ConnectToReplica() => ConnectionMultiplexer.Connect($"127.0.0.1:{ReplicaPort},abortConnect=false");

    public async Task DisposeAsync()
    {
        foreach (var process in _processes)
        {
            await TestProcesses.StopAsync(process);
        }
    }

    private Process StartRedis(int port, params string[] extra)
    {
        var start = new ProcessStartInfo("redis-server")
        {
            ArgumentList = { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", TestPaths.NewFolder("redis") },
        };
        foreach (var arg in extra)
        {
            start.ArgumentList.Add(arg);
        }

        var process = TestProcesses.Start(start);
        _processes.Add(process);
        return process;
    }
}
