using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Baton.Gateway.Operations;

/// <summary>Ready once the host has started and until it begins to stop, so a balancer drains it first.</summary>
internal sealed class GatewayReadinessCheck(IHostApplicationLifetime lifetime) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("The gateway is stopping."));
        }

        return Task.FromResult(lifetime.ApplicationStarted.IsCancellationRequested
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy("The gateway is starting."));
    }
}
