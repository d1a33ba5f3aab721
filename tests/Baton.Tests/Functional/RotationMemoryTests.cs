using System.Net;
using System.Net.Http.Json;
using Baton.Gateway.Sessions;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Functional;

/// <summary>Logins in a loop cannot grow what the gateway remembers of rotations past MaxSessions.</summary>
[Trait("Category", "Functional")]
public sealed class RotationMemoryTests : IAsyncLifetime
{
    private readonly List<TestBackend> _backends = [];

    public async Task InitializeAsync()
    {
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task HundredsOfLoginsOfOneClient_RememberNoMoreRotationsThanMaxSessions()
    {
        await using var gateway = await TestGateway.StartAsync(_backends, ["--Baton:Sessions:MaxSessions=20"]);
        var table = (SessionPinTable)gateway.Services.GetRequiredService<ISessionPinTable>();
        // One browser, each login rotating its session to a new id: one session kept, a rotation per login.
        using var client = gateway.NewClient();
        var answered = new Dictionary<HttpStatusCode, int>();
        for (var i = 0; i < 300; i++)
        {
            using var login = await client.PostAsJsonAsync(new Uri("/login", UriKind.Relative), new { user = $"u{i}" });
            answered[login.StatusCode] = answered.GetValueOrDefault(login.StatusCode) + 1;
        }

        Assert.Equal(300, answered.GetValueOrDefault(HttpStatusCode.OK));
        Assert.True(table.RenamedCount <= 20, $"{table.RenamedCount} rotations remembered");
        Assert.DoesNotContain(answered.Keys, status => (int)status >= 500 && status != HttpStatusCode.ServiceUnavailable);
    }
}
