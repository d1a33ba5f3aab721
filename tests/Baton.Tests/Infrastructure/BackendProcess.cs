using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A DemoBackend in its own process on a fixed loopback port, so a test can kill it for real
/// (SIGKILL), pause and resume it (SIGSTOP/SIGCONT), and start a new one on the same port.
/// </summary>
internal sealed class BackendProcess : IAsyncDisposable
{
    private Process? _process;

    private BackendProcess(string instanceId, int port)
    {
        InstanceId = instanceId;
        Port = port;
        Address = new Uri($"http://127.0.0.1:{port}/");
    }

    public string InstanceId { get; }

    public int Port { get; }

    public Uri Address { get; }

    public static async Task<BackendProcess> StartAsync(string instanceId)
    {
        var backend = new BackendProcess(instanceId, TestProcesses.FreePort());
        await backend.StartAsync();
        return backend;
    }

    /// <summary>Starts a (new) process on this backend's port and waits until it answers.</summary>
    public async Task StartAsync()
    {
        _process = TestProcesses.Start(new ProcessStartInfo("dotnet")
        {
            ArgumentList =
            {
                Path.Combine(AppContext.BaseDirectory, "Baton.DemoBackend.dll"),
                "--urls", $"http://127.0.0.1:{Port}",
                $"--Demo:InstanceId={InstanceId}",
                $"--Baton:Secret={TestGateway.Secret}",
                "--contentRoot", TestPaths.NewFolder("backend-process"),
                "--Logging:LogLevel:Default=Warning",
            },
        });

        using var client = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(2) };
        await Eventually.TrueAsync(async () =>
        {
            try
            {
                using var response = await client.GetAsync(new Uri("/health", UriKind.Relative));
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
            catch (TaskCanceledException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), $"backend {InstanceId} should start");
    }

    /// <summary>kill -9: the process dies with its memory.</summary>
    public async Task KillAsync()
    {
        var process = _process!;
        _process = null;
        await TestProcesses.StopAsync(process);
    }

    /// <summary>SIGSTOP: the process keeps its sockets (connections are still accepted) but answers nothing.</summary>
    public void Pause() => Signal("STOP");

    public void Resume() => Signal("CONT");

    public async ValueTask DisposeAsync()
    {
        if (_process is not null)
        {
            TestProcesses.TrySignal(_process, "CONT");
            await KillAsync();
        }
    }

    private void Signal(string signal)
    {
        if (_process is not null)
        {
            TestProcesses.Signal(_process, signal);
        }
    }
}
