using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Baton.Backend;

/// <summary>Removes expired sessions, forgotten restore nonces and retired ids every <c>Baton:Backend:PurgeInterval</c>.</summary>
internal sealed class SessionPurger(BackendSessionStore store, ReplayGuard replays, RetiredSessions retired, IOptions<BatonBackendOptions> options, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Backend.PurgeInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                store.PurgeExpired();
                replays.Forget();
                retired.Forget();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
