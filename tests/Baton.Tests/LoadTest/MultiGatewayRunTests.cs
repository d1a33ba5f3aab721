using System.Text.Json;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.LoadTest;

/// <summary>
/// The load-test tool's scale-out mode, run for real and short: two gateway processes behind HAProxy on a PostgreSQL
/// journal they share, one of them killed -9 and started again. Its report must show what the kill cost (requests
/// failed, time until every session was answered again) and no session lost, stale or mixed up.
/// </summary>
[Collection(nameof(RunsAlone))]
[Trait("Category", "Functional")]
public sealed class MultiGatewayRunTests
{
    private const int Users = 20;

    [Fact]
    public async Task AShortMultiGatewayRun_ReportsTheGatewayKill_AndLosesNoSession()
    {
        var folder = TestPaths.NewFolder("multi-gateway");
        using var output = new StringWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var code = await Baton.LoadTest.Program.RunAsync(
            ["compare", "--modes", "multi-gateway", "--users", $"{Users}", "--rate", "60", "--duration", "12", "--capacity-seconds", "1", "--warmup-seconds", "1", "--out", folder],
            output,
            timeout.Token);
        Assert.True(code == 0, output.ToString());

        using var results = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, "results.json")));
        var mode = Assert.Single(results.RootElement.EnumerateArray());
        Assert.Equal("multi-gateway", mode.GetProperty("name").GetString());
        Assert.True(mode.GetProperty("requests").GetInt64() > 0);
        foreach (var field in new[] { "sessions_lost", "sessions_stale", "sessions_mismatched", "sessions_lost_gateway_kill", "errors_5xx", "errors_5xx_gateway" })
        {
            Assert.True(mode.GetProperty(field).GetInt64() == 0, $"{field}: {mode.GetProperty(field)}; {output}");
        }

        Assert.Equal(["steady", "gateway-fault", "gateway-recovery"], mode.GetProperty("phases").EnumerateArray().Select(p => p.GetProperty("name").GetString()));
        var kill = Assert.Single(mode.GetProperty("faults").EnumerateArray());
        Assert.Equal("kill -9 gateway g1", kill.GetProperty("description").GetString());

        // Each user has one connection and one request at a time: the kill can fail at most one request of each.
        var failed = kill.GetProperty("requests_failed").GetInt64();
        Assert.InRange(failed, 0, Users);
        Assert.Equal(failed, mode.GetProperty("errors").GetInt64());
        Assert.InRange(kill.GetProperty("every_session_answered_s").GetDouble(), 0, 10);

        var markdown = await File.ReadAllTextAsync(Path.Combine(folder, "report.md"));
        Assert.Contains("| `multi-gateway` |", markdown, StringComparison.Ordinal);
        Assert.Contains("gateway kill: 0", markdown, StringComparison.Ordinal);
        Assert.Contains("requests failed, every session answered again", markdown, StringComparison.Ordinal);
        foreach (var log in new[] { "gateway-g1.log", "gateway-g2.log", "haproxy.log", "postgres.log" })
        {
            Assert.True(File.Exists(Path.Combine(folder, "runs", "multi-gateway", "logs", log)), $"{log} should be written");
        }
    }
}
