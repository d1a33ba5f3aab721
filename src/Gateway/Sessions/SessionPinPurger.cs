using Baton.Gateway.Configuration;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Sessions;

/// <summary>Sweeps expired sessions from the pin table every <c>Baton:Sessions:PurgeInterval</c>.</summary>
internal sealed class SessionPinPurger(
    ISessionPinTable pins,
    IOptions<BatonOptions> options,
    TimeProvider timeProvider,
    ILogger<SessionPinPurger> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Sessions.PurgeInterval, timeProvider);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var purged = await pins.PurgeExpiredAsync(stoppingToken);
                if (purged > 0)
                {
                    Log.ExpiredSessionsPurged(logger, purged, pins.Count);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
