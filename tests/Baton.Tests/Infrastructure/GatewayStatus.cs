using System.Text.Json;

namespace Baton.Tests.Infrastructure;

/// <summary>What a gateway's status document (<c>/_baton/status.json</c>) says.</summary>
public static class GatewayStatus
{
    /// <summary>True when the gateway has confirmed Redis holds every write (<c>store.redis.current</c>).</summary>
    public static async Task<bool> RedisIsCurrentAsync(Uri gateway)
    {
        using var client = new HttpClient { BaseAddress = gateway };
        using var status = JsonDocument.Parse(await client.GetStringAsync(new Uri("/_baton/status.json", UriKind.Relative)));
        return status.RootElement.GetProperty("store").GetProperty("redis").GetProperty("current").GetBoolean();
    }
}
