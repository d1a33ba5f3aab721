using Baton.Gateway.Store;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Baton.Gateway.Operations;

/// <summary>
/// Ready once the host has started and until it begins to stop, so a balancer drains it first. A Redis tier
/// that is down makes it Degraded, still ready (200): the journal carries the store alone.
/// </summary>
internal sealed class GatewayReadinessCheck(IHostApplicationLifetime lifetime, RedisTier redis) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("The gateway is stopping."));
        }

        if (!lifetime.ApplicationStarted.IsCancellationRequested)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("The gateway is starting."));
        }

        return Task.FromResult(redis.IsConfigured && (!redis.IsConnected || redis.IsCircuitOpen)
            ? HealthCheckResult.Degraded("Redis is unavailable; the journal carries the store alone.")
            : HealthCheckResult.Healthy());
    }
}
