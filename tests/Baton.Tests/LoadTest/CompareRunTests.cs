using System.Text.Json;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.LoadTest;

/// <summary>
/// The load-test tool's quick comparison, run for real (redis-server, backends and gateway as processes,
/// kill -9 faults): its checker must see the sessions plain sticky routing loses, and see none lost by Baton.
/// </summary>
[Collection(nameof(RunsAlone))]
[Trait("Category", "Functional")]
public sealed class CompareRunTests
{
    [Fact]
    public async Task QuickComparison_FindsLostSessionsWithStickyOnly_AndNoneWithCheckpoints()
    {
        var folder = TestPaths.NewFolder("compare");
        using var output = new StringWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        var code = await Baton.LoadTest.Program.RunAsync(["compare", "--quick", "--out", folder], output, timeout.Token);
        Assert.True(code == 0, output.ToString());

        using var results = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, "results.json")));
        var modes = results.RootElement.EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!, m => m);
        Assert.Equal(["sticky-checkpoint", "sticky-only", "shared-store", "direct"], modes.Keys);
        foreach (var mode in modes.Values)
        {
            foreach (var field in new[] { "requests", "rps", "p50_ms", "p99_ms", "errors_5xx", "sessions_lost" })
            {
                Assert.True(mode.TryGetProperty(field, out _), $"{mode.GetProperty("name")} lacks {field}");
            }

            Assert.True(mode.GetProperty("requests").GetInt64() > 0);

            // The scale-out mode's figures are its own; the default modes' results read as they always have.
            Assert.False(mode.TryGetProperty("sessions_lost_gateway_kill", out _), $"{mode.GetProperty("name")} has a gateway kill figure");
            Assert.All(mode.GetProperty("faults").EnumerateArray(), fault => Assert.False(fault.TryGetProperty("requests_failed", out _)));
        }

        var baton = modes["sticky-checkpoint"];
        Assert.Equal(0, baton.GetProperty("sessions_lost").GetInt64());
        Assert.Equal(0, baton.GetProperty("sessions_stale").GetInt64());
        Assert.Equal(0, baton.GetProperty("sessions_mismatched").GetInt64());
        Assert.Equal(0, baton.GetProperty("errors_5xx").GetInt64());
        Assert.Equal(0, baton.GetProperty("errors_5xx_gateway").GetInt64());
        Assert.True(modes["sticky-only"].GetProperty("sessions_lost").GetInt64() > 0, "sticky-only must lose the killed backend's sessions");

        foreach (var file in new[] { "report.html", "report.md", "sticky-checkpoint.hgrm", "sticky-only.hgrm", "shared-store.hgrm", "direct.hgrm" })
        {
            Assert.True(File.Exists(Path.Combine(folder, file)), $"{file} should be written");
        }

        var markdown = await File.ReadAllTextAsync(Path.Combine(folder, "report.md"));
        Assert.Contains("| `sticky-checkpoint` |", markdown, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AShortComparisonOnNodeBackends_LosesNothingWithCheckpoints_WhileStickyOnlyLosesTheKilledBackendsSessions()
    {
        var folder = TestPaths.NewFolder("compare-node");
        using var output = new StringWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var code = await Baton.LoadTest.Program.RunAsync(
            ["compare", "--backends", "node", "--modes", "sticky-checkpoint,sticky-only", "--users", "20", "--rate", "60", "--duration", "12", "--capacity-seconds", "1", "--warmup-seconds", "1", "--out", folder],
            output,
            timeout.Token);
        Assert.True(code == 0, output.ToString());

        using var results = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, "results.json")));
        var modes = results.RootElement.EnumerateArray().ToDictionary(m => m.GetProperty("name").GetString()!, m => m);
        var baton = modes["sticky-checkpoint"];
        Assert.True(baton.GetProperty("requests").GetInt64() > 0);
        foreach (var field in new[] { "sessions_lost", "sessions_stale", "sessions_mismatched", "errors_5xx", "errors_5xx_gateway" })
        {
            Assert.True(baton.GetProperty(field).GetInt64() == 0, $"{field}: {baton.GetProperty(field)}; {output}");
        }

        Assert.True(modes["sticky-only"].GetProperty("sessions_lost").GetInt64() > 0, "sticky-only on MemoryStore must lose the killed backend's sessions");
        Assert.Contains("backends: the Express demo", await File.ReadAllTextAsync(Path.Combine(folder, "report.md")), StringComparison.Ordinal);

        // The backends were the Express demo's processes.
        var log = await File.ReadAllTextAsync(Path.Combine(folder, "runs", "sticky-checkpoint", "logs", "b1.log"));
        Assert.Contains("Demo backend b1 listening", log, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--users", "0")]
    [InlineData("--backends", "ruby")]
    [InlineData("--modes", "sticky,nothing")]
    [InlineData("--write-fraction", "2")]
    [InlineData("--bogus", "1")]
    public async Task ABadOption_IsRefusedWithAReason(string option, string value)
    {
        using var output = new StringWriter();
        var code = await Baton.LoadTest.Program.RunAsync(["compare", option, value], output, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Contains("error: ", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NodeBackendsWithTheSharedStoreMode_AreRefusedWithAReason()
    {
        using var output = new StringWriter();
        var code = await Baton.LoadTest.Program.RunAsync(["compare", "--backends", "node", "--modes", "sticky-checkpoint,shared-store"], output, CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Contains("cannot run shared-store", output.ToString(), StringComparison.Ordinal);
    }
}
