namespace Baton.Tests.Infrastructure;

/// <summary>Three DemoBackends (b1..b3) behind one gateway, all real, all on loopback.</summary>
public sealed class TestCluster : IAsyncLifetime
{
    private readonly List<TestBackend> _backends = [];

    internal TestGateway Gateway { get; private set; } = null!;

    internal IReadOnlyList<TestBackend> Backends => _backends;

    public async Task InitializeAsync()
    {
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }

        Gateway = await TestGateway.StartAsync(_backends);
    }

    public async Task DisposeAsync()
    {
        if (Gateway is not null)
        {
            await Gateway.DisposeAsync();
        }

        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }
}
