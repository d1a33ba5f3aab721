using System.Diagnostics;
using System.Globalization;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Operations;

/// <summary>
/// The Prometheus endpoint, in a run of its own: OpenTelemetry listens to meters by name across the process, so
/// other gateways started by tests running alongside would mix their series into this one's.
/// </summary>
[Collection(nameof(RunsAlone))]
[Trait("Category", "Functional")]
public sealed class PrometheusMetricsTests : IAsyncLifetime
{
    private ProcessCluster _cluster = null!;

    public async Task InitializeAsync() => _cluster = await ProcessCluster.StartAsync(["--Baton:Store:RedisCheckInterval=00:00:00.200"]);

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    [Fact]
    public async Task PrometheusMetrics_MoveOnAFailover_AndOnARedisOutage()
    {
        using var client = _cluster.Gateway.NewClient();
        var owner = (await client.IncrementAsync()).Instance;
        var scrape = await ScrapeAsync();
        Assert.True(Value(scrape, "baton_session_live", $"baton_destination=\"{owner}\"") >= 1, scrape);
        Assert.Equal(1, Value(scrape, "baton_redis_up"));

        await Backend(owner).KillAsync();
        await client.IncrementAsync();
        await Eventually.TrueAsync(
            async () =>
            {
                var text = await ScrapeAsync();
                return Value(text, "baton_failover_count") >= 1 && Value(text, "baton_session_moved") >= 1 && Value(text, "baton_restore_count", "baton_outcome=\"ok\"") >= 1;
            },
            TimeSpan.FromSeconds(10),
            "the failover, the move and the restore should be counted");

        await _cluster.Redis.KillAsync();
        await client.IncrementAsync();
        await client.IncrementAsync();
        var last = string.Empty;
        try
        {
            await Eventually.TrueAsync(
                async () =>
                {
                    last = await ScrapeAsync();
                    return Value(last, "baton_redis_up") == 0 && Value(last, "baton_store_fallback_count") >= 1 && Value(last, "baton_redis_unavailable") >= 1;
                },
                TimeSpan.FromSeconds(30),
                "Redis should be reported down, and the journal's fallback counted");
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            throw new Xunit.Sdk.XunitException($"{ex.Message}{Environment.NewLine}last scrape ({last.Length} characters):{Environment.NewLine}{string.Join(Environment.NewLine, last.Split('\n').Where(l => l.Contains("baton_redis", StringComparison.Ordinal) || l.Contains("baton_store", StringComparison.Ordinal)))}{Environment.NewLine}{last[..Math.Min(last.Length, 1500)]}");
        }
    }

    private BackendProcess Backend(string instance) => _cluster.Backend(instance);

    private async Task<string> ScrapeAsync()
    {
        using var client = new HttpClient { BaseAddress = _cluster.Gateway.Address };
        return await client.GetStringAsync(new Uri("/_baton/metrics", UriKind.Relative));
    }

    // The sum of a metric's samples (counters carry a _total suffix), optionally only those with a label.
    private static double Value(string scrape, string metric, string? label = null)
        => scrape.Split('\n')
            .Where(line => line.StartsWith(metric, StringComparison.Ordinal) && (line.Length == metric.Length || line[metric.Length] is '{' or ' ' || line[metric.Length..].StartsWith("_total", StringComparison.Ordinal)))
            .Where(line => label is null || line.Contains(label, StringComparison.Ordinal))
            .Sum(line => double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));
}
