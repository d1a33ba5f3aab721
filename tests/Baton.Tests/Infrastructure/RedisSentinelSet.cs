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
        StartRedis(ReplicaPort, "--replicaof", "127.0.0.1", PrimaryPort.ToString(System.Globalization.CultureInfo.InvariantCulture));
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
        await using var sentinel = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{SentinelPort},serviceName={ServiceName},abortConnect=false");
        await Eventually.TrueAsync(() => sentinel.IsConnected, TimeSpan.FromSeconds(20), "the sentinel should know the primary");
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
