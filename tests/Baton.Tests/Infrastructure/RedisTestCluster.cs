namespace Baton.Tests.Infrastructure;

/// <summary>The same, with a real redis-server as the fast tier.</summary>
public sealed class RedisTestCluster : TestCluster
{
    protected override bool WithRedis => true;
}
