namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real redis-server and in-process DemoBackends b1..bN, for a test class whose tests each start their own
/// gateway over them (with the settings that test needs).
/// </summary>
internal sealed class RedisAndBackends(int backends) : IAsyncLifetime
{
    public RedisServer Redis { get; } = new();

    /// <summary>The backends still running (<see cref="StopAsync"/> removes one).</summary>
    public List<TestBackend> Backends { get; } = [];

    public async Task InitializeAsync()
    {
        await Redis.InitializeAsync();
        for (var i = 1; i <= backends; i++)
        {
            Backends.Add(await TestBackend.StartAsync($"b{i}"));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var backend in Backends)
        {
            await backend.DisposeAsync();
        }

        await Redis.DisposeAsync();
    }

    /// <summary>Stops one backend for good: its sessions must come back from the store elsewhere.</summary>
    public async Task StopAsync(string instance)
    {
        var backend = Backends.Single(b => b.InstanceId == instance);
        Backends.Remove(backend);
        await backend.DisposeAsync();
    }
}
