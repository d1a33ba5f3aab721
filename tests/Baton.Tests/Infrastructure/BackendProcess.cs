using System.Diagnostics;
using Baton.LoadTest;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A demo backend (the ASP.NET Core one, or the Express one) in its own process on a fixed loopback port, so a test can kill it for real
/// (SIGKILL), pause and resume it (SIGSTOP/SIGCONT), and start a new one on the same port.
/// </summary>
internal sealed class BackendProcess : IAsyncDisposable
{
    private readonly ManagedProcess _process;

    private BackendProcess(string instanceId, int port, int? grpcPort, BackendKind kind)
    {
        InstanceId = instanceId;
        Port = port;
        Kind = kind;
        Address = new Uri($"http://127.0.0.1:{port}/");
        GrpcAddress = grpcPort is { } h2c ? new Uri($"http://127.0.0.1:{h2c}/") : null;

        // With a gRPC port (the .NET demo only): a second endpoint speaking cleartext HTTP/2 only (h2c), as gRPC
        // services listen.
        string[] endpoints = grpcPort is { } grpc
            ? [$"--Kestrel:Endpoints:Http:Url=http://127.0.0.1:{port}", $"--Kestrel:Endpoints:Grpc:Url=http://127.0.0.1:{grpc}", "--Kestrel:Endpoints:Grpc:Protocols=Http2"]
            : [];
        var contentRoot = TestPaths.NewFolder("backend-process");
        _process = TestServers.Managed($"backend-{instanceId}", "backend", port, () => DemoBackendCommand.Create(kind, AppContext.BaseDirectory, port, instanceId, TestGateway.Secret, contentRoot, endpoints),
            ct => ManagedProcess.HttpReadyAsync(new Uri(Address, "/health"), ct));
    }

    public string InstanceId { get; }

    public int Port { get; }

    public Uri Address { get; }

    /// <summary>Its cleartext HTTP/2 endpoint, when it has one.</summary>
    public Uri? GrpcAddress { get; }

    /// <summary>Which demo it runs.</summary>
    public BackendKind Kind { get; }

    public static async Task<BackendProcess> StartAsync(string instanceId, bool grpc = false, BackendKind kind = BackendKind.Dotnet)
    {
        if (grpc && kind != BackendKind.Dotnet)
        {
            throw new ArgumentException("Only the .NET demo has a gRPC endpoint.", nameof(grpc));
        }

        var backend = new BackendProcess(instanceId, ManagedProcess.FreePort(), grpc ? ManagedProcess.FreePort() : null, kind);
        await backend.StartAsync();
        return backend;
    }

    /// <summary>Starts a (new) process on this backend's port and waits until it answers.</summary>
    public Task StartAsync() => TestServers.StartAsync(_process);

    /// <summary>kill -9: the process dies with its memory.</summary>
    public Task KillAsync()
    {
        _process.Kill();
        return Task.CompletedTask;
    }

    /// <summary>SIGSTOP: the process keeps its sockets (connections are still accepted) but answers nothing.</summary>
    public void Pause() => _process.Pause();

    public void Resume() => _process.Resume();

    public ValueTask DisposeAsync()
    {
        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}
