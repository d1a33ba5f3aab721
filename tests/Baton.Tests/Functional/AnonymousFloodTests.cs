using Baton.Tests.Infrastructure;

namespace Baton.Tests.Functional;

/// <summary>Strangers cannot fill the session table: only a session a backend wrote state for takes a slot.</summary>
[Trait("Category", "Functional")]
public sealed class AnonymousFloodTests : IAsyncLifetime
{
    private readonly List<TestBackend> _backends = [];
    private TestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        _gateway = await TestGateway.StartAsync(_backends, ["--Baton:Sessions:MaxSessions=300", "--Baton:Sessions:MaxAnonymousSessions=500"]);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task TwoThousandCookielessRequests_LeaveTheSessionLimitUntouched_AndANewVisitorsChangeIsServed()
    {
        var pins = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Baton.Gateway.Sessions.ISessionPinTable>(_gateway.Services);
        using var stranger = _gateway.NewRawClient();
        await Parallel.ForAsync(0, 2000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (_, cancellationToken) =>
        {
            using var response = await stranger.GetAsync(new Uri("/counter", UriKind.Relative), cancellationToken);
            Assert.True(response.IsSuccessStatusCode, $"GET /counter answered {(int)response.StatusCode}");
        });

        Assert.Equal(0, pins.Count);
        Assert.InRange(pins.AnonymousCount, 1, 500);

        using var visitor = _gateway.NewClient();
        Assert.Equal(1, (await visitor.IncrementAsync()).Count);
        Assert.Equal(2, (await visitor.IncrementAsync()).Count);
        Assert.Equal(1, pins.Count);
    }

    [Fact]
    public async Task PastTheLimitOfSessionsWithState_ANewSessionsFirstChangeIsRefused503_AndKeptNowhere()
    {
        var kept = new List<HttpClient>();
        for (var i = 0; i < 300; i++)
        {
            var client = _gateway.NewClient();
            await client.IncrementAsync();
            kept.Add(client);
        }

        using var late = _gateway.NewClient();
        using var refused = await late.PostAsync(new Uri("/counter", UriKind.Relative), content: null);

        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Equal(2, (await kept[0].IncrementAsync()).Count);
        foreach (var client in kept)
        {
            client.Dispose();
        }
    }
}
