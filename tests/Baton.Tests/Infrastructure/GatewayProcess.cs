using System.Diagnostics;

namespace Baton.Tests.Infrastructure;

/// <summary>The gateway in its own process on a fixed loopback port, so a test can kill -9 it and start it again.</summary>
internal sealed class GatewayProcess
{
    private readonly string[] _args;
    private Process? _process;

    public GatewayProcess(IReadOnlyList<Uri> backends, IEnumerable<string> extraArgs)
    {
        Port = TestProcesses.FreePort();
        Address = new Uri($"http://127.0.0.1:{Port}/");
        JournalPath = Path.Combine(TestPaths.NewFolder("gateway-process"), "journal.db");
        _args = [.. TestGateway.Arguments(backends, [$"--urls=http://127.0.0.1:{Port}", $"--Baton:JournalPath={JournalPath}", .. extraArgs])];
    }

    public int Port { get; }

    public Uri Address { get; }

    public string JournalPath { get; }

    public async Task StartAsync()
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = AppContext.BaseDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Baton.Gateway.dll"));
        foreach (var arg in _args)
        {
            start.ArgumentList.Add(arg);
        }

        _process = TestProcesses.Start(start);
        using var client = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(2) };
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                using var response = await client.GetAsync(new Uri("/_baton/ready", UriKind.Relative));
                return response.IsSuccessStatusCode;
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "the gateway should become ready");
    }

    /// <summary>SIGTERM: a graceful stop. Returns the exit code once the process has ended.</summary>
    public async Task<int> TerminateAsync(TimeSpan timeout)
    {
        var process = _process!;
        TestProcesses.Signal(process, "TERM");
        using var deadline = new CancellationTokenSource(timeout);
        await process.WaitForExitAsync(deadline.Token);
        var code = process.ExitCode;
        _process = null;
        await TestProcesses.StopAsync(process);
        return code;
    }

    /// <summary>kill -9: no shutdown, no flush; only what was committed survives.</summary>
    public async Task KillAsync()
    {
        var process = _process!;
        _process = null;
        await TestProcesses.StopAsync(process);
    }

    /// <summary>Kills the process if it runs.</summary>
    public async Task StopAsync()
    {
        if (_process is not null)
        {
            await KillAsync();
        }
    }
}
