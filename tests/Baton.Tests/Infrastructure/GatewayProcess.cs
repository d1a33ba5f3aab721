using Baton.LoadTest;

namespace Baton.Tests.Infrastructure;

/// <summary>The gateway in its own process on a fixed loopback port, so a test can kill -9 it and start it again.</summary>
internal sealed class GatewayProcess
{
    private readonly ManagedProcess _process;

    public GatewayProcess(IReadOnlyList<Uri> backends, IEnumerable<string> extraArgs)
    {
        Port = ManagedProcess.FreePort();
        Address = new Uri($"http://127.0.0.1:{Port}/");
        JournalPath = Path.Combine(TestPaths.NewFolder("gateway-process"), "journal.db");
        string[] args = [.. TestGateway.Arguments(backends, [$"--urls=http://127.0.0.1:{Port}", $"--Baton:JournalPath={JournalPath}", .. extraArgs])];
        _process = TestServers.Managed("gateway", "gateway", Port, () => TestServers.Dotnet("Baton.Gateway.dll", args),
            ct => ManagedProcess.HttpReadyAsync(new Uri(Address, "/_baton/ready"), ct));
    }

    public int Port { get; }

    public Uri Address { get; }

    public string JournalPath { get; }

    public Task StartAsync() => TestServers.StartAsync(_process);

    /// <summary>SIGTERM: a graceful stop. Returns the exit code once the process has ended.</summary>
    public Task<int> TerminateAsync(TimeSpan timeout) => _process.TerminateAsync(timeout);

    /// <summary>kill -9: no shutdown, no flush; only what was committed survives.</summary>
    public Task KillAsync()
    {
        _process.Kill();
        return Task.CompletedTask;
    }

    /// <summary>Kills the process if it runs; nothing of it outlives the test.</summary>
    public void Stop() => _process.Dispose();
}
