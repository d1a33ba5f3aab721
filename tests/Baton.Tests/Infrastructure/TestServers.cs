using System.Diagnostics;
using Baton.LoadTest;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// Server processes of the tests (backends, gateways, redis-server, sentinels) are the load-test tool's
/// <see cref="ManagedProcess"/>: one way to find ports, start, wait for, signal and kill them. Each logs to
/// a file in its test folder.
/// </summary>
internal static class TestServers
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    public static ManagedProcess Managed(string name, string role, int port, Func<ProcessStartInfo> start, Func<CancellationToken, Task<bool>> isReady)
        => new(name, role, port, Path.Combine(TestPaths.NewFolder("logs"), name + ".log"), start, isReady);

    public static Task StartAsync(ManagedProcess process) => process.StartAsync(StartTimeout, CancellationToken.None);

    /// <summary>A redis-server on the port, empty (a new folder for each start), optionally as a replica.</summary>
    public static ManagedProcess Redis(string name, int port, params string[] extra)
        => Managed(name, "redis", port, () =>
        {
            var start = new ProcessStartInfo("redis-server")
            {
                ArgumentList = { "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", TestPaths.NewFolder("redis") },
            };
            foreach (var arg in extra)
            {
                start.ArgumentList.Add(arg);
            }

            return start;
        }, ct => ManagedProcess.AcceptsAsync(port, ct));

    /// <summary>One of this build's programs, run with <c>dotnet</c> from the test output folder.</summary>
    public static ProcessStartInfo Dotnet(string dll, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = AppContext.BaseDirectory };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, dll));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }
}
