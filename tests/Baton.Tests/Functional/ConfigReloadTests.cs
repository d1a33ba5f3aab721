using System.Text.Json.Nodes;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Functional;

[Trait("Category", "Functional")]
public sealed class ConfigReloadTests
{
    [Fact]
    public async Task EditingAppsettingsJson_AppliesNewDestinations_WithoutARestart()
    {
        var backends = new List<TestBackend>();
        for (var i = 1; i <= 3; i++)
        {
            backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        try
        {
            var root = TestPaths.NewFolder("reload");
            var settingsPath = Path.Combine(root, "appsettings.json");
            var settings = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "appsettings.json")))!;
            var destinations = settings["ReverseProxy"]!["Clusters"]!["demo"]!["Destinations"]!;
            for (var i = 0; i < 3; i++)
            {
                destinations[$"b{i + 1}"]!["Address"] = backends[i].Address.ToString();
            }

            await File.WriteAllTextAsync(settingsPath, settings.ToJsonString());
            await using var gateway = await TestGateway.StartAsync(TestGateway.CreateApp(
                ["--urls=http://127.0.0.1:0", $"--Baton:Secret={TestGateway.Secret}", "--Logging:LogLevel:Default=Warning"], contentRoot: root));

            // Only b3 remains once the edit is applied.
            destinations.AsObject().Remove("b1");
            destinations.AsObject().Remove("b2");
            await File.WriteAllTextAsync(settingsPath, settings.ToJsonString());

            await Eventually.TrueAsync(() => NewSessionsLandOnlyOn(gateway, "b3"), TimeSpan.FromSeconds(15), "the edited file should take effect");
        }
        finally
        {
            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }
        }
    }

    private static async Task<bool> NewSessionsLandOnlyOn(TestGateway gateway, string instance)
    {
        for (var i = 0; i < 6; i++)
        {
            using var client = gateway.NewClient();
            if ((await client.IncrementAsync()).Instance != instance)
            {
                return false;
            }
        }

        return true;
    }
}
