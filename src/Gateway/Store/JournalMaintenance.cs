using Baton.Gateway.Configuration;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Store;

/// <summary>
/// Every <c>Baton:Journal:CompactInterval</c>: deletes sessions idle well past their timeout (ones no
/// gateway is tracking, e.g. left by a crash), writes the WAL back and frees pages.
/// </summary>
internal sealed class JournalMaintenance(JournalTier journal, IOptions<BatonOptions> options, TimeProvider time, ILogger<JournalMaintenance> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var sessions = options.Value.Sessions;

        // Past this, no restarted gateway would load the session either (see SessionPinTable.TouchInterval).
        var retention = sessions.IdleTimeout + sessions.IdleTimeout / 8 + sessions.PurgeInterval;
        using var timer = new PeriodicTimer(options.Value.Journal.CompactInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    var deleted = await journal.DeleteIdleSinceAsync((time.GetUtcNow() - retention).ToUnixTimeMilliseconds());
                    await journal.CompactAsync();
                    Log.JournalCompacted(logger, deleted);
                }
                catch (JournalUnavailableException ex)
                {
                    Log.BackgroundWriteFailed(logger, "compact", ex);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
