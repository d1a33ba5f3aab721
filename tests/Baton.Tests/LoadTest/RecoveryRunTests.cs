using System.Text.Json;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.LoadTest;

/// <summary>The recovery measurement, small: a Redis outage under load, a refill and a gateway restart, for real.</summary>
[Collection(nameof(RunsAlone))]
[Trait("Category", "Functional")]
public sealed class RecoveryRunTests
{
    [Fact]
    public async Task RecoveryRun_LosesNothing_RefillsRedis_AndSessionsCarryOnAfterAGatewayRestart()
    {
        var folder = TestPaths.NewFolder("recovery");
        using var output = new StringWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var code = await Baton.LoadTest.Program.RunAsync(
            ["recovery", "--sessions", "300", "--outage-seconds", "6", "--users", "20", "--rate", "50", "--warmup-seconds", "1", "--out", folder], output, timeout.Token);
        Assert.True(code == 0, output.ToString());

        using var results = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(folder, "recovery.json")));
        var root = results.RootElement;
        Assert.Equal(0, root.GetProperty("outage_errors").GetInt64());
        Assert.Equal(0, root.GetProperty("outage_sessions_lost_or_stale").GetInt64());
        Assert.True(root.GetProperty("first_session_carried_on").GetBoolean());
        Assert.Equal("200/200", root.GetProperty("sample_sessions_carried_on").GetString());
        Assert.True(root.GetProperty("refill_seconds").GetDouble() > 0);
    }
}
