using Baton.Gateway.Configuration;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Store;

/// <summary>
/// Every <c>Baton:Journal:CompactInterval</c>: deletes sessions past their expiry (ones no gateway is tracking,
/// e.g. left by a crash) and returns the space they held where the engine can.
/// </summary>
internal sealed class JournalMaintenance(JournalTier journal, IOptions<BatonOptions> options, TimeProvider time, ILogger<JournalMaintenance> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Journal.CompactInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                // A purge deletes at most PurgeChunk rows, so that none outlasts the journal's timeout or holds back the
                // writes it is batched with: a backlog is worked off chunk by chunk.
                var now = time.GetUtcNow().ToUnixTimeMilliseconds();
                var deleted = 0;
                int? chunk;
                do
                {
                    chunk = await journal.PurgeAsync(now);
                    deleted += chunk ?? 0;
                }
                while (chunk == JournalTier.PurgeChunk && !stoppingToken.IsCancellationRequested);

                if (chunk is not null && await journal.CompactAsync())
                {
                    Log.JournalCompacted(logger, deleted);
                }
                else
                {
                    Log.JournalMaintenanceFailed(logger, journal.LastFailure);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}

/// <summary>
/// Every <c>Baton:Store:RedisCheckInterval</c>: writes into the tiers what they missed while failing (see
/// <see cref="SessionStore.CatchUpAsync"/>).
/// </summary>
internal sealed class StoreCatchUp(SessionStore store, IOptions<BatonOptions> options, TimeProvider time, ILogger<StoreCatchUp> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.Store.RedisCheckInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (store.HasMissedWrites && await store.CatchUpAsync(stoppingToken) is var written and > 0)
                {
                    Log.TiersCaughtUp(logger, written, store.JournalBehind);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
