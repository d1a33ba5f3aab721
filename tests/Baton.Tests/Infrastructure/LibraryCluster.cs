namespace Baton.Tests.Infrastructure;

/// <summary>Three <see cref="LibraryApp"/> backends (b1..b3) behind one gateway (journal only), all in this process.</summary>
internal sealed class LibraryCluster : IAsyncLifetime
{
    public List<TestBackend> Backends { get; } = [];

    public TestGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        for (var i = 1; i <= 3; i++)
        {
            Backends.Add(await LibraryApp.StartAsync($"b{i}"));
        }

        Gateway = await TestGateway.StartAsync(Backends);
    }

    public async Task DisposeAsync()
    {
        await Gateway.DisposeAsync();
        foreach (var backend in Backends)
        {
            await backend.DisposeAsync();
        }
    }
}
