using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Infrastructure;

/// <summary>A real DemoBackend on Kestrel, loopback, port 0.</summary>
internal sealed class TestBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestBackend(string instanceId, WebApplication app, Uri address)
    {
        InstanceId = instanceId;
        _app = app;
        Address = address;
    }

    public string InstanceId { get; }

    public Uri Address { get; }

    /// <summary>The app's services (its meters, singletons such as a <see cref="RequestGate"/>).</summary>
    public IServiceProvider Services => _app.Services;

    public static Task<TestBackend> StartAsync(string instanceId, params string[] extraArgs) => StartAsync(instanceId, extraArgs, configure: null);

    public static async Task<TestBackend> StartAsync(string instanceId, string[] extraArgs, Action<WebApplicationBuilder>? configure)
    {
        var app = DemoBackend.Program.CreateApp(new WebApplicationOptions
        {
            Args = ["--urls=http://127.0.0.1:0", $"--Demo:InstanceId={instanceId}", $"--Baton:Secret={TestGateway.Secret}", "--Logging:LogLevel:Default=Warning", .. extraArgs],
            ContentRootPath = TestPaths.NewFolder("backend"),
            EnvironmentName = "Production",
        }, configure);
        return await StartAppAsync(instanceId, app);
    }

    public static async Task<TestBackend> StartAppAsync(string instanceId, WebApplication app)
    {
        await app.StartAsync();
        return new TestBackend(instanceId, app, ServerAddress(app));
    }

    public static Uri ServerAddress(WebApplication app)
        => new(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
