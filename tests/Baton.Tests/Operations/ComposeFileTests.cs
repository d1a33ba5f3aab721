using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using Baton.Gateway.Configuration;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace Baton.Tests.Operations;

/// <summary>
/// docker-compose.yml, checked without Docker: against the gateway's real settings, the Dockerfiles' ports
/// and the shipped route config; and its healthcheck commands run for real against live servers.
/// </summary>
[Trait("Category", "Functional")]
public sealed class ComposeFileTests
{
    private static readonly Dictionary<object, object> Compose = Load();

    private static Dictionary<object, object> Services => Map(Compose["services"]);

    [Fact]
    public void TheServicesAreRedisThreeBackendsAndTheGateway_AndTheGatewayWaitsForEachToBeHealthy()
    {
        Assert.Equal(["b1", "b2", "b3", "gateway", "redis"], Services.Keys.Cast<string>().Order());
        var dependsOn = Map(Map(Services["gateway"])["depends_on"]);
        foreach (var service in new[] { "redis", "b1", "b2", "b3" })
        {
            Assert.Equal("service_healthy", Map(dependsOn[service])["condition"]);
            Assert.True(Map(Services[service]).ContainsKey("healthcheck"), $"{service} needs a healthcheck for service_healthy");
        }

        Assert.True(Map(Services["gateway"]).ContainsKey("healthcheck"));
    }

    [Fact]
    public void EveryBatonVariableOfTheGateway_NamesARealSetting()
    {
        var variables = Environment("gateway");
        var batonKeys = variables.Keys.Where(k => k.StartsWith("Baton__", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(batonKeys);
        foreach (var key in batonKeys)
        {
            Type type = typeof(BatonOptions);
            foreach (var part in key.Split("__").Skip(1))
            {
                var property = type.GetProperty(part, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
                Assert.True(property is { CanWrite: true }, $"{key}: {type.Name} has no setting '{part}'");
                type = property!.PropertyType;
            }
        }

        // And the values pass the gateway's own validation (a stand-in for the secret compose reads from the environment).
        var settings = new BatonOptions();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(variables
            .Where(v => v.Key.StartsWith("Baton__", StringComparison.Ordinal))
            .Select(v => new KeyValuePair<string, string?>(v.Key.Replace("__", ":", StringComparison.Ordinal)["Baton:".Length..], v.Key is "Baton__Secret" or "Baton__Admin__Token" ? TestGateway.Secret : v.Value)))
            .Build();
        configuration.Bind(settings);
        Assert.Equal("redis:6379", settings.Store.Redis);
        Assert.True(settings.Admin.AllowRemote);
        Assert.Equal(TestGateway.Secret, settings.Admin.Token);
        var validation = new BatonOptionsValidator(new Microsoft.Extensions.Hosting.Internal.HostingEnvironment { EnvironmentName = "Production" }).Validate(null, settings);
        Assert.True(validation.Succeeded, validation.FailureMessage);
    }

    [Fact]
    public void TheGatewayRoutesToEachBackendService_OnThePortItsImageListensOn()
    {
        var backendPort = ListenPort("src/DemoBackend/Dockerfile");
        var shipped = new ConfigurationBuilder().AddJsonFile(Path.Combine(TestPaths.RepositoryRoot, "appsettings.json")).Build();
        var destinations = shipped.GetSection("ReverseProxy:Clusters:demo:Destinations").GetChildren().Select(d => d.Key).ToList();
        var variables = Environment("gateway");
        foreach (var destination in destinations)
        {
            var address = new Uri(variables[$"ReverseProxy__Clusters__demo__Destinations__{destination}__Address"]);
            Assert.True(Services.ContainsKey(address.Host), $"{destination} points at '{address.Host}', which is no service");
            Assert.Equal(backendPort, address.Port);
            Assert.Equal(destination, Environment(address.Host)["Demo__InstanceId"]);
        }

        var published = ((List<object>)Map(Services["gateway"])["ports"]).Cast<string>().Single();
        Assert.Equal($"127.0.0.1:8080:{ListenPort("src/Gateway/Dockerfile")}", published);
        Assert.Equal(new Uri(shipped["Urls"]!).Port, int.Parse(published.Split(':')[1], CultureInfo.InvariantCulture));
    }

    [Fact]
    public void TheJournalIsOnANamedVolume_AndTheStopGracePeriodOutlastsTheGatewaysDrain()
    {
        var gateway = Map(Services["gateway"]);
        var journal = Environment("gateway")["Baton__Journal__Path"];
        var mount = ((List<object>)gateway["volumes"]).Cast<string>().Single();
        var (volume, target) = (mount.Split(':')[0], mount.Split(':')[1]);
        Assert.Equal(target, Path.GetDirectoryName(journal));
        Assert.True(Map(Compose["volumes"]).ContainsKey(volume), $"'{volume}' should be a named volume");

        // The gateway's own settings: readiness fails for ShutdownDelay, then the host finishes requests in flight.
        using var app = TestGateway.CreateApp(TestGateway.Arguments([new Uri("http://127.0.0.1:1")]));
        var drain = app.Services.GetRequiredService<IOptions<BatonOptions>>().Value.ShutdownDelay
                    + app.Services.GetRequiredService<IOptions<HostOptions>>().Value.ShutdownTimeout;
        var grace = TimeSpan.FromSeconds(int.Parse(((string)gateway["stop_grace_period"]).TrimEnd('s'), CultureInfo.InvariantCulture));
        Assert.True(grace > drain, $"stop_grace_period {grace} should outlast the gateway's drain {drain}");
    }

    [Fact]
    public async Task TheHealthcheckCommands_PassAgainstLiveServers_AndFailAgainstNone()
    {
        await using var backend = await TestBackend.StartAsync("b1");
        await using var gateway = await TestGateway.StartAsync([backend]);
        Assert.Equal(0, await RunHealthcheckAsync("b1", backend.Address.Port));
        Assert.Equal(0, await RunHealthcheckAsync("gateway", gateway.Address.Port));
        Assert.NotEqual(0, await RunHealthcheckAsync("gateway", Baton.LoadTest.ManagedProcess.FreePort()));
    }

    // The service's healthcheck as Docker would run it (exec form), aimed at a local port instead of 8080.
    private static async Task<int> RunHealthcheckAsync(string service, int port)
    {
        var test = ((List<object>)Map(Map(Services[service])["healthcheck"])["test"]).Cast<string>().ToList();
        Assert.Equal("CMD", test[0]);
        var start = new ProcessStartInfo(test[1]);
        foreach (var arg in test.Skip(2))
        {
            start.ArgumentList.Add(arg.Replace("/8080", $"/{port}", StringComparison.Ordinal));
        }

        return await Baton.LoadTest.ManagedProcess.RunAsync(start, TimeSpan.FromSeconds(20));
    }

    private static Dictionary<string, string> Environment(string service)
        => Map(Map(Services[service])["environment"]).ToDictionary(p => (string)p.Key, p => (string)p.Value, StringComparer.Ordinal);

    private static int ListenPort(string dockerfile)
    {
        var line = File.ReadLines(Path.Combine(TestPaths.RepositoryRoot, dockerfile)).Single(l => l.StartsWith("ENV Urls=", StringComparison.Ordinal));
        return new Uri(line["ENV Urls=".Length..].Replace("+", "localhost", StringComparison.Ordinal)).Port;
    }

    private static Dictionary<object, object> Map(object node) => (Dictionary<object, object>)node;

    private static Dictionary<object, object> Load()
    {
        using var reader = new StreamReader(Path.Combine(TestPaths.RepositoryRoot, "docker-compose.yml"));
        return new DeserializerBuilder().Build().Deserialize<Dictionary<object, object>>(new MergingParser(new Parser(reader)));
    }
}
