using Baton.Gateway.Configuration;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Operations;

/// <summary>
/// On a graceful stop (SIGTERM), keeps serving for <c>Baton:ShutdownDelay</c> while readiness already
/// answers 503, so load balancers take the gateway out before it stops accepting requests. Then the
/// server drains in-flight requests and the journal is flushed and closed.
/// </summary>
internal sealed class ShutdownDelay(IOptions<BatonOptions> options, TimeProvider time, ILogger<ShutdownDelay> logger) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    // Runs before any hosted service stops — the server included — while ApplicationStopping already fails readiness.
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        var delay = options.Value.ShutdownDelay;
        if (delay <= TimeSpan.Zero)
        {
            return;
        }

        Log.ShuttingDown(logger, delay);
        try
        {
            await Task.Delay(delay, time, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
