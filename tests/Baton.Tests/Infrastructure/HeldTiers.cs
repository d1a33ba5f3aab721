using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// Holds chosen writes of a real gateway's store tiers until the test lets them go: the gateway's session store is made
/// over its own Redis and journal tiers wrapped in <see cref="HeldTier"/>, so a test can stop the gateway at an exact
/// step (a checkpoint of some session being written, a move being claimed) and look at what the rest of the system does
/// meanwhile. Writes no hold matches pass untouched.
/// </summary>
internal sealed class HeldTiers
{
    private readonly Lock _lock = new();
    private readonly List<WriteHold> _holds = [];

    /// <summary>For a gateway's <c>configure</c>: its store's tiers go through these holds (reach them with <see cref="Of"/>).</summary>
    public static Action<WebApplicationBuilder> Install()
        => builder =>
        {
            builder.Services.AddSingleton<HeldTiers>();
            builder.Services.AddSingleton(sp =>
            {
                var holds = sp.GetRequiredService<HeldTiers>();
                var redis = sp.GetRequiredService<RedisTier>();
                return new SessionStore(
                    new HeldTier(redis, holds),
                    new HeldTier(sp.GetRequiredService<JournalTier>(), holds),
                    sp.GetRequiredService<IOptions<BatonOptions>>(),
                    sp.GetRequiredService<BatonMetrics>(),
                    sp.GetRequiredService<ILogger<SessionStore>>(),
                    redis);
            });
        };

    public static HeldTiers Of(TestGateway gateway) => gateway.Services.GetRequiredService<HeldTiers>();

    /// <summary>From now on, writes for which <paramref name="matches"/> (kind, session id) is true wait until the hold is released.</summary>
    public WriteHold Hold(Func<string, string, bool> matches)
    {
        var hold = new WriteHold(matches);
        lock (_lock)
        {
            _holds.Add(hold);
        }

        return hold;
    }

    /// <summary>Lets every write go, now and from now on (before the gateway stops, whatever a test got to).</summary>
    public void ReleaseAll()
    {
        lock (_lock)
        {
            foreach (var hold in _holds)
            {
                hold.Release();
            }
        }
    }

    internal async Task PassAsync(string kind, string sessionId)
    {
        WriteHold[] holds;
        lock (_lock)
        {
            holds = [.. _holds];
        }

        foreach (var hold in holds)
        {
            await hold.PassAsync(kind, sessionId);
        }
    }
}

/// <summary>One hold: <see cref="Reached"/> completes when a matching write arrives; every matching write waits for <see cref="Release"/>.</summary>
internal sealed class WriteHold(Func<string, string, bool> matches)
{
    private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Reached => _reached.Task;

    public void Release() => _released.TrySetResult();

    internal async Task PassAsync(string kind, string sessionId)
    {
        if (_released.Task.IsCompleted || !matches(kind, sessionId))
        {
            return;
        }

        _reached.TrySetResult();
        await _released.Task;
    }
}

/// <summary>A gateway tier whose writes pass the test's holds first (kinds: checkpoint, move, claim, release, touch, end).</summary>
internal sealed class HeldTier(ISessionTier inner, HeldTiers holds) : IDurableTier
{
    private IDurableTier Durable => inner as IDurableTier ?? throw new InvalidOperationException($"{inner.Name} is not a journal.");

    public string Name => inner.Name;

    public bool IsConfigured => inner.IsConfigured;

    public bool IsCurrent => inner.IsCurrent;

    public bool IsFull => inner.IsFull;

    public bool IsShared => inner is IDurableTier { IsShared: true };

    public bool StartedEmpty => inner is IDurableTier { StartedEmpty: true };

    public string LastFailure => Durable.LastFailure;

    public TimeSpan CommitWait => Durable.CommitWait;

    public async Task<SaveOutcome> CheckpointAsync(SessionRecord record, CheckpointReport? report = null)
    {
        await holds.PassAsync("checkpoint", record.SessionId);
        return await inner.CheckpointAsync(record, report);
    }

    public async Task<WriteOutcome> MoveAsync(string sessionId, string owner, long epoch, long lastAccess, long expiresAt)
    {
        await holds.PassAsync("move", sessionId);
        return await inner.MoveAsync(sessionId, owner, epoch, lastAccess, expiresAt);
    }

    public async Task<WriteOutcome> TouchAsync(string sessionId, long lastAccess, long expiresAt)
    {
        await holds.PassAsync("touch", sessionId);
        return await inner.TouchAsync(sessionId, lastAccess, expiresAt);
    }

    public async Task<WriteOutcome> EndAsync(string sessionId)
    {
        await holds.PassAsync("end", sessionId);
        return await inner.EndAsync(sessionId);
    }

    public Task<int?> PurgeAsync(long now) => inner.PurgeAsync(now);

    public Task<TierRead> GetAsync(string sessionId, CancellationToken cancellationToken) => inner.GetAsync(sessionId, cancellationToken);

    public TierScan ScanLive(long cutoff) => inner.ScanLive(cutoff);

    public Task<bool> WaitAvailableAsync(TimeSpan timeout, CancellationToken cancellationToken) => inner.WaitAvailableAsync(timeout, cancellationToken);

    public Task<bool?> HasEndedAsync(string sessionId, CancellationToken cancellationToken) => Durable.HasEndedAsync(sessionId, cancellationToken);

    public bool IsUnavailable(Exception exception) => Durable.IsUnavailable(exception);

    public async Task<ClaimOutcome> ClaimAsync(string sessionId, string owner, long fromEpoch, long now, long expiresAt, long movingUntil)
    {
        await holds.PassAsync("claim", sessionId);
        return await Durable.ClaimAsync(sessionId, owner, fromEpoch, now, expiresAt, movingUntil);
    }

    public async Task<WriteOutcome> ReleaseAsync(string sessionId, long epoch)
    {
        await holds.PassAsync("release", sessionId);
        return await Durable.ReleaseAsync(sessionId, epoch);
    }
}
