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
/// and the shipped route config; and its healthcheck commands run for real against live servers. Its scale-out
/// profile (two gateways behind HAProxy, Redis under Sentinel, a shared PostgreSQL journal) against the same, and
/// against the HAProxy and Sentinel configs it mounts.
/// </summary>
[Trait("Category", "Functional")]
public sealed class ComposeFileTests
{
    private static readonly Dictionary<object, object> Compose = Load();

    private const string ScaleOut = "scale-out";

    private static Dictionary<object, object> Services => Map(Compose["services"]);

    /// <summary>What <c>docker compose up</c> starts: the services of no profile.</summary>
    private static IEnumerable<string> DefaultServices => Services.Where(s => !Map(s.Value).ContainsKey("profiles")).Select(s => (string)s.Key);

    private static IEnumerable<string> ScaleOutServices => Services.Where(s => Profiles((string)s.Key).Contains(ScaleOut)).Select(s => (string)s.Key);

    private static string[] ScaledGateways => [.. ScaleOutServices.Where(s => s.StartsWith("gateway-", StringComparison.Ordinal)).Order()];

    [Fact]
    public void TheServicesAreRedisThreeBackendsAndTheGateway_AndTheGatewayWaitsForEachToBeHealthy()
    {
        Assert.Equal(["b1", "b2", "b3", "gateway", "redis"], DefaultServices.Order());
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
        foreach (var scaled in ScaledGateways)
        {
            Assert.Equal(0, await RunHealthcheckAsync(scaled, gateway.Address.Port));
            Assert.NotEqual(0, await RunHealthcheckAsync(scaled, Baton.LoadTest.ManagedProcess.FreePort()));
        }
    }

    [Fact]
    public void TheScaleOutProfile_IsTwoGatewaysBehindHAProxy_OnSentinelsAndPostgreSql_EachWaitingForWhatItNeeds()
    {
        Assert.Equal(["gateway-1", "gateway-2", "haproxy", "postgres", "redis-replica", "sentinel-1", "sentinel-2", "sentinel-3"], ScaleOutServices.Order());
        foreach (var service in ScaleOutServices)
        {
            Assert.Equal([ScaleOut], Profiles(service));
            foreach (var (needed, condition) in Map(Map(Services[service]).GetValueOrDefault("depends_on") ?? new Dictionary<object, object>()))
            {
                // What it waits for starts with it: a service of no profile, or of this one; and says when it is healthy.
                Assert.True(DefaultServices.Contains(needed) || ScaleOutServices.Contains(needed), $"{service} depends on {needed}, which the profile does not start");
                Assert.Equal("service_healthy", Map(condition)["condition"]);
                Assert.True(Map(Services[(string)needed]).ContainsKey("healthcheck"), $"{needed} needs a healthcheck for service_healthy");
            }
        }

        Assert.Equal(2, ScaledGateways.Length);
        var haproxy = Map(Services["haproxy"]);
        Assert.Equal(ScaledGateways, Map(haproxy["depends_on"]).Keys.Cast<string>().Order());
        var published = ((List<object>)haproxy["ports"]).Cast<string>().Single();
        Assert.StartsWith("127.0.0.1:", published, StringComparison.Ordinal);
        Assert.NotEqual(((List<object>)Map(Services["gateway"])["ports"]).Cast<string>().Single().Split(':')[1], published.Split(':')[1]);
    }

    [Theory]
    [InlineData("gateway-1")]
    [InlineData("gateway-2")]
    public void EachScaledOutGateway_SharesThePostgreSqlJournalAndTheSentinels_WithRealSettings(string service)
    {
        var variables = Environment(service);
        var settings = ValidatedSettings(variables);
        Assert.Equal(JournalProvider.PostgreSql, settings.Journal.Provider);
        Assert.DoesNotContain("Baton__Journal__Path", variables.Keys);

        // The journal: the postgres service, as the user, password and database it is made with.
        var connection = new Npgsql.NpgsqlConnectionStringBuilder(variables["Baton__Journal__ConnectionString"]);
        var postgres = Environment("postgres");
        Assert.Equal("postgres", connection.Host);
        Assert.Equal(5432, connection.Port);
        Assert.Equal(postgres["POSTGRES_USER"], connection.Username);
        Assert.Equal(postgres["POSTGRES_DB"], connection.Database);
        Assert.Equal(postgres["POSTGRES_PASSWORD"], connection.Password);

        // Redis: every sentinel service on the port its config listens on, under the name the sentinels monitor.
        var sentinel = SentinelConfig();
        var monitor = sentinel["sentinel monitor"].Split(' ');
        var parts = settings.Store.Redis!.Split(',');
        var sentinels = ScaleOutServices.Where(s => s.StartsWith("sentinel-", StringComparison.Ordinal)).Order().ToList();
        Assert.Equal(sentinels.Select(s => $"{s}:{sentinel["port"]}"), parts.Where(p => !p.Contains('=', StringComparison.Ordinal)).Order());
        Assert.Contains($"serviceName={monitor[0]}", parts);
        Assert.True(Services.ContainsKey(monitor[1]), $"the sentinels monitor '{monitor[1]}', which is no service");
        Assert.InRange(int.Parse(monitor[3], CultureInfo.InvariantCulture), sentinels.Count / 2 + 1, sentinels.Count);

        // The backends as the single gateway has them, and the same drain.
        foreach (var destination in Environment("gateway").Where(v => v.Key.StartsWith("ReverseProxy__", StringComparison.Ordinal)))
        {
            Assert.Equal(destination.Value, variables[destination.Key]);
        }

        Assert.Equal(Map(Services["gateway"])["stop_grace_period"], Map(Services[service])["stop_grace_period"]);
        Assert.False(Map(Services[service]).ContainsKey("ports"), "a scaled-out gateway is reached through HAProxy only");
    }

    [Fact]
    public async Task TheBalancerConfig_IsTcpWithReadinessChecks_OnEveryScaledOutGateway_AndHAProxyTakesIt()
    {
        var mount = ((List<object>)Map(Services["haproxy"])["volumes"]).Cast<string>().Single().Split(':');
        Assert.Equal("/usr/local/etc/haproxy/haproxy.cfg", mount[1]);
        var file = Path.Combine(TestPaths.RepositoryRoot, mount[0]);
        var lines = File.ReadLines(file).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.Contains("mode tcp", lines);
        Assert.Contains("option httpchk GET /_baton/ready", lines);
        Assert.Contains("http-check expect status 200", lines);
        var servers = lines.Where(l => l.StartsWith("server ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
        Assert.Equal(ScaledGateways, servers.Select(s => s[1]).Order());
        var gatewayPort = ListenPort("src/Gateway/Dockerfile");
        Assert.All(servers, s => Assert.Equal($"{s[1]}:{gatewayPort}", s[2]));
        Assert.All(servers, s => Assert.Contains("check", s));
        var bind = lines.Single(l => l.StartsWith("bind ", StringComparison.Ordinal));
        Assert.Equal(((List<object>)Map(Services["haproxy"])["ports"]).Cast<string>().Single().Split(':')[2], bind.Split(':')[^1]);

        // HAProxy itself reads it (the gateways' names resolve only inside compose: those are warnings).
        Assert.Equal(0, await Baton.LoadTest.ManagedProcess.RunAsync(new ProcessStartInfo(Baton.LoadTest.HaProxy.Program(), ["-c", "-f", file]), TimeSpan.FromSeconds(20)));
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

    private static List<string> Profiles(string service)
        => Map(Services[service]).TryGetValue("profiles", out var profiles) ? [.. ((List<object>)profiles).Cast<string>()] : [];

    /// <summary>The Baton settings of these variables, bound as the gateway binds them, having passed its validation.</summary>
    private static BatonOptions ValidatedSettings(Dictionary<string, string> variables)
    {
        foreach (var key in variables.Keys.Where(k => k.StartsWith("Baton__", StringComparison.Ordinal)))
        {
            Type type = typeof(BatonOptions);
            foreach (var part in key.Split("__").Skip(1))
            {
                var property = type.GetProperty(part, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
                Assert.True(property is { CanWrite: true }, $"{key}: {type.Name} has no setting '{part}'");
                type = property!.PropertyType;
            }
        }

        var settings = new BatonOptions();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(variables
            .Where(v => v.Key.StartsWith("Baton__", StringComparison.Ordinal))
            .Select(v => new KeyValuePair<string, string?>(v.Key.Replace("__", ":", StringComparison.Ordinal)["Baton:".Length..], v.Key is "Baton__Secret" or "Baton__Admin__Token" ? TestGateway.Secret : v.Value)))
            .Build();
        configuration.Bind(settings);
        var validation = new BatonOptionsValidator(new Microsoft.Extensions.Hosting.Internal.HostingEnvironment { EnvironmentName = "Production" }).Validate(null, settings);
        Assert.True(validation.Succeeded, validation.FailureMessage);
        return settings;
    }

    /// <summary>The shipped sentinel config's directives: <c>port</c>, <c>sentinel monitor</c>... (the first words) and the rest.</summary>
    private static Dictionary<string, string> SentinelConfig()
    {
        var mount = ((List<object>)Map(Services["sentinel-1"])["volumes"]).Cast<string>().Single().Split(':')[0];
        return File.ReadLines(Path.Combine(TestPaths.RepositoryRoot, mount))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => l.Split(' ', 2))
            .Select(p => p[0] == "sentinel" ? (Key: "sentinel " + p[1].Split(' ')[0], Value: p[1].Split(' ', 2)[1]) : (Key: p[0], Value: p[1]))
            .ToDictionary(p => p.Key, p => p.Value, StringComparer.Ordinal);
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
