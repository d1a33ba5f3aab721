using Baton.Gateway.Configuration;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Sessions;

/// <summary>Loads the pin table at startup, then sweeps expired sessions every <c>Baton:Sessions:PurgeInterval</c>.</summary>
internal sealed class SessionPinPurger(
    ISessionPinTable pins,
    IOptions<BatonOptions> options,
    TimeProvider timeProvider,
    ILogger<SessionPinPurger> logger) : BackgroundService
{
    /// <summary>Loads the live sessions the store knows before the gateway takes requests.</summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await pins.LoadAsync(cancellationToken);
        Log.SessionsLoaded(logger, pins.Count);
        await base.StartAsync(cancellationToken);
    }

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
