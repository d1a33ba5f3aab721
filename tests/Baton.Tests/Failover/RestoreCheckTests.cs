using System.Text.Json;
using Baton.Gateway.Sessions;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Failover;

/// <summary>
/// The gateway proves each backend process's restore channel before a failover needs it: a backend with
/// another secret is reported (log, metric, status) while it still serves, not discovered when sessions
/// have to move onto it.
/// </summary>
[Trait("Category", "Functional")]
public sealed class RestoreCheckTests
{
    private const string OtherSecret = "another-secret-0123456789abcdef0123456789abcdef";
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);
    private static readonly string[] FastChecks = ["--Baton:Failover:RestoreCheckInterval=00:00:00.200"];

    [Fact]
    public async Task ABackendWithAnotherSecret_IsReportedRefusedOnce_AndTheOthersAccepted()
    {
        await using var good = await TestBackend.StartAsync("b1");
        await using var misconfigured = await TestBackend.StartAsync("b2", $"--Baton:Secret={OtherSecret}");
        var logs = new LogCapture();
        await using var gateway = await TestGateway.StartAsync([good, misconfigured], FastChecks, logs.AttachTo);
        using var refusals = new InstrumentCounter(gateway, "baton.restore.check", "baton.outcome", "refused");
        using var client = gateway.NewRawClient();

        await Eventually.TrueAsync(async () => await RestoreCheckOfAsync(client, "b1") == "accepted" && await RestoreCheckOfAsync(client, "b2") == "refused 401", Deadline, "b1 takes restores, b2 refuses them (401: its secret differs)");

        // Checked again every interval, but the error is logged once per backend process.
        await Eventually.TrueAsync(() => refusals.Total >= 3, Deadline, "the refusing backend is checked again every interval");
        Assert.Single(logs.Lines, l => l.Contains("'b2' refuses restores (401)", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Lines, l => l.Contains("'b1' refuses", StringComparison.Ordinal));

        // The throwaway sessions of the checks are no sessions of the gateway.
        Assert.Equal(0, gateway.Services.GetRequiredService<ISessionPinTable>().Count);
    }

    [Fact]
    public async Task ABackendRestartedAtTheSameAddress_IsCheckedAgain()
    {
        var first = await TestBackend.StartAsync("b1", FixedPort());
        await using var gateway = await TestGateway.StartAsync([first], FastChecks);
        using var client = gateway.NewRawClient();

        await using var second = await RestartAndWaitForItsCheckAsync(client, first);
    }

    [Fact]
    public async Task AClusterWithoutBatonAffinity_IsNotChecked()
    {
        var first = await TestBackend.StartAsync("b1", FixedPort());
        await using var other = await TestBackend.StartAsync("b2");
        string[] args =
        [
            .. FastChecks,
            "--ReverseProxy:Routes:other:ClusterId=plain",
            "--ReverseProxy:Routes:other:Match:Path=/other/{**rest}",
            $"--ReverseProxy:Clusters:plain:Destinations:d1:Address={other.Address}",
        ];
        await using var gateway = await TestGateway.StartAsync([first], args);
        using var client = gateway.NewRawClient();

        // A new process in the Baton cluster is checked in a later round: by then every earlier round is over.
        await using var second = await RestartAndWaitForItsCheckAsync(client, first);

        var plain = await DestinationAsync(client, "d1", cluster: "plain");
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("restore_check").ValueKind);
    }

    /// <summary>
    /// Waits until b1's process is checked, stops it, starts a new one on the same port and waits until
    /// that new process is checked too; returns the new one.
    /// </summary>
    private static async Task<TestBackend> RestartAndWaitForItsCheckAsync(HttpClient client, TestBackend first)
    {
        string? before = null;
        await Eventually.TrueAsync(async () => (before = await AcceptedIncarnationAsync(client)) is not null, Deadline, "the first process is checked");

        var port = first.Address.Port;
        await first.DisposeAsync();
        var second = await TestBackend.StartAsync("b1", $"--urls=http://127.0.0.1:{port}");
        try
        {
            await Eventually.TrueAsync(async () => await AcceptedIncarnationAsync(client) is { } now && now != before, Deadline, "the new process at the same address is checked");
            return second;
        }
        catch
        {
            await second.DisposeAsync();
            throw;
        }
    }

    // A port below the ephemeral range, so a restart can bind it again with no other server taking it meanwhile.
    private static string FixedPort() => $"--urls=http://127.0.0.1:{Baton.LoadTest.ManagedProcess.FreePort()}";

    private static async Task<string?> RestoreCheckOfAsync(HttpClient client, string destination)
        => (await DestinationAsync(client, destination)).GetProperty("restore_check").GetString();

    private static async Task<string?> AcceptedIncarnationAsync(HttpClient client)
    {
        var b1 = await DestinationAsync(client, "b1");
        return b1.GetProperty("restore_check").GetString() == "accepted" ? b1.GetProperty("incarnation").GetString() : null;
    }

    private static async Task<JsonElement> DestinationAsync(HttpClient client, string destination, string cluster = "demo")
    {
        using var document = JsonDocument.Parse(await client.GetStringAsync(new Uri("/_baton/status.json", UriKind.Relative)));
        return document.RootElement.GetProperty("clusters").EnumerateArray().Single(c => c.GetProperty("id").GetString() == cluster)
            .GetProperty("destinations").EnumerateArray().Single(d => d.GetProperty("id").GetString() == destination).Clone();
    }
}
