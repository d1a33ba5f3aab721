using Microsoft.AspNetCore.Builder;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real Baton gateway on Kestrel, loopback, port 0, started from the shipped appsettings.json with the
/// demo cluster's destinations pointed at the given backends.
/// </summary>
internal sealed class TestGateway : IAsyncDisposable
{
    public const string Secret = "test-secret-0123456789abcdef0123456789abcdef";
    public const string CookieName = "baton.sid";

    private TestGateway(WebApplication app, Uri address)
    {
        App = app;
        Address = address;
    }

    public WebApplication App { get; }

    public Uri Address { get; }

    public IServiceProvider Services => App.Services;

    /// <summary>The address the gateway listens on with this scheme (when it has several endpoints).</summary>
    public Uri AddressOf(string scheme)
        => new(Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>(App.Services)
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First(a => a.StartsWith(scheme + "://", StringComparison.Ordinal)));

    /// <summary>The gateway's SQLite journal file.</summary>
    public string JournalPath => Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Gateway.Store.JournalTier>(App.Services).Location;

    public static Task<TestGateway> StartAsync(IReadOnlyList<TestBackend> backends, IEnumerable<string>? extraArgs = null, Action<WebApplicationBuilder>? configure = null)
        => StartAsync(CreateApp(Arguments(backends.Select(b => b.Address).ToList(), extraArgs), configure));

    public static Task<TestGateway> StartAsync(IReadOnlyList<BackendProcess> backends, IEnumerable<string>? extraArgs = null, Action<WebApplicationBuilder>? configure = null)
        => StartAsync(CreateApp(Arguments(backends.Select(b => b.Address).ToList(), extraArgs), configure));

    public static async Task<TestGateway> StartAsync(WebApplication app)
    {
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return new TestGateway(app, TestBackend.ServerAddress(app));
    }

    /// <summary>Builds (without starting) a gateway from the shipped config plus these arguments.</summary>
    public static WebApplication CreateApp(IEnumerable<string> args, Action<WebApplicationBuilder>? configure = null, string environment = "Production", string? contentRoot = null)
        => Gateway.Program.CreateApp(
            new WebApplicationOptions
            {
                Args = [.. args],
                ContentRootPath = contentRoot ?? AppContext.BaseDirectory,
                EnvironmentName = environment,
            },
            configure);

    private const int ShippedDestinations = 3;

    // Bound for the whole run, never listening: nothing else can take these ports.
    private static readonly System.Collections.Concurrent.ConcurrentBag<System.Net.Sockets.Socket> Held = [];

    private static readonly Lazy<Uri[]> RefusingAddresses = new(() => [.. Enumerable.Range(0, ShippedDestinations).Select(_ =>
    {
        var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        socket.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        Held.Add(socket);
        return new Uri($"http://{socket.LocalEndPoint}/");
    })]);

    public static List<string> Arguments(IReadOnlyList<Uri> backends, IEnumerable<string>? extraArgs = null)
    {
        var args = new List<string>
        {
            "--urls=http://127.0.0.1:0",
            $"--Baton:Secret={Secret}",
            $"--Baton:JournalPath={Path.Combine(TestPaths.NewFolder("journal"), "journal.db")}",
            "--Logging:LogLevel:Default=Warning",
            "--Baton:ShutdownDelay=00:00:00",
        };
        for (var i = 0; i < backends.Count; i++)
        {
            args.Add($"--ReverseProxy:Clusters:demo:Destinations:b{i + 1}:Address={backends[i]}");
        }

        // The shipped config's other destinations (b1–b3 on fixed ports) would otherwise stay, pointing wherever
        // something may listen: each is a port this process holds and never listens on, so it refuses connections.
        for (var i = backends.Count; i < ShippedDestinations; i++)
        {
            args.Add($"--ReverseProxy:Clusters:demo:Destinations:b{i + 1}:Address={RefusingAddresses.Value[i]}");
        }

        args.AddRange(extraArgs ?? []);
        return args;
    }

    /// <summary>Waits until the gateway's Redis tier is connected (it connects in the background).</summary>
    public Task WaitForRedisAsync()
        => Eventually.TrueAsync(
            () => Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Gateway.Store.RedisTier>(App.Services).IsConnected,
            TimeSpan.FromSeconds(20),
            "the gateway should connect to Redis");

    /// <summary>A client on this gateway sharing another client's cookie jar: the same browser after a restart.</summary>
    public HttpClient ClientWithJar(System.Net.CookieContainer jar)
    {
        var client = CookieJar.WithJar(jar);
        client.BaseAddress = Address;
        return client;
    }

    /// <summary>A client with its own cookie jar: one browser, one session.</summary>
    public HttpClient NewClient() => ClientWithJar(new System.Net.CookieContainer());

    /// <summary>A client that keeps no cookies, to see and send raw cookie headers.</summary>
    public HttpClient NewRawClient() => new(new HttpClientHandler { UseCookies = false, AllowAutoRedirect = false }) { BaseAddress = Address };

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
