using System.Runtime.CompilerServices;
using Baton.Gateway.Store;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A session tier in memory, for unit tests of the store's logic: the same check-and-set rules as the real tiers
/// (a later version of the same or a later epoch; the owner travels with the epoch), and switches a test flips to
/// make it unavailable or to hold its writes.
/// </summary>
internal sealed class MemoryTier(string name, bool isShared = false) : IDurableTier
{
    private readonly Dictionary<string, SessionRecord> _records = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly HashSet<string> _ended = new(StringComparer.Ordinal);

    public string Name => name;

    public bool IsConfigured { get; set; } = true;

    public bool IsCurrent { get; set; } = true;

    public bool IsFull => false;

    public bool IsShared => isShared;

    public bool StartedEmpty { get; set; }

    public string LastFailure => "the tier is down";

    public TimeSpan CommitWait { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Every call answers as an unreachable tier would.</summary>
    public bool Down { get; set; }

    /// <summary>When set, writes wait for it before they are applied.</summary>
    public TaskCompletionSource? Hold { get; set; }

    /// <summary>Writes applied or refused, in order: the kind and the session.</summary>
    public List<(string Kind, string Id)> Writes { get; } = [];

    public SessionRecord? this[string sessionId]
    {
        get
        {
            lock (_lock)
            {
                return _records.GetValueOrDefault(sessionId);
            }
        }
    }

    public void Put(SessionRecord record)
    {
        lock (_lock)
        {
            _records[record.SessionId] = record;
        }
    }

    public async Task<SaveOutcome> CheckpointAsync(SessionRecord record, CheckpointReport? report = null)
    {
        if (!await ReachAsync("checkpoint", record.SessionId))
        {
            return SaveOutcome.Unavailable;
        }

        lock (_lock)
        {
            if (!_records.TryGetValue(record.SessionId, out var held))
            {
                if (record.DeltaBase is not null)
                {
                    return SaveOutcome.Unapplicable;
                }

                _records[record.SessionId] = record;
                return SaveOutcome.Stored;
            }

            if (record.DeltaBase is { } deltaBase && record.Version > held.Version && record.Epoch >= held.Epoch)
            {
                // Folded at once: this tier keeps whole states only, so it holds no chain to report.
                if (record.Epoch != held.Epoch || held.Version < deltaBase || !Baton.Protocol.KeyedState.TryApply(held.State, record.State, out var folded))
                {
                    return SaveOutcome.Unapplicable;
                }

                record = record with { State = folded, Digest = Baton.Protocol.Ids.Sha256(folded), DeltaBase = null };
            }

            if (record.Version > held.Version && record.Epoch >= held.Epoch)
            {
                _records[record.SessionId] = record with
                {
                    Owner = record.Epoch > held.Epoch || held.Owner is null ? record.Owner : held.Owner,
                    LastAccess = Math.Max(held.LastAccess, record.LastAccess),
                    ExpiresAt = Math.Max(held.ExpiresAt, record.ExpiresAt),
                    MovingUntil = held.MovingUntil,
                };
                return SaveOutcome.Stored;
            }

            return held.Epoch > record.Epoch ? SaveOutcome.Fenced : held.Epoch < record.Epoch ? SaveOutcome.Diverged : SaveOutcome.Stale;
        }
    }

    public async Task<WriteOutcome> MoveAsync(string sessionId, string owner, long epoch, long lastAccess, long expiresAt)
    {
        if (!await ReachAsync("move", sessionId))
        {
            return WriteOutcome.Unavailable;
        }

        lock (_lock)
        {
            _records[sessionId] = _records.TryGetValue(sessionId, out var held)
                ? held with
                {
                    Owner = epoch >= held.Epoch ? owner : held.Owner,
                    Epoch = Math.Max(epoch, held.Epoch),
                    LastAccess = Math.Max(held.LastAccess, lastAccess),
                    ExpiresAt = Math.Max(held.ExpiresAt, expiresAt),
                }
                : new SessionRecord(sessionId, owner, epoch, 0, [], SessionRecord.EmptyDigest, lastAccess, expiresAt);
        }

        return WriteOutcome.Written;
    }

    public async Task<ClaimOutcome> ClaimAsync(string sessionId, string owner, long fromEpoch, long now, long expiresAt, long movingUntil)
    {
        if (!await ReachAsync("claim", sessionId))
        {
            return ClaimOutcome.Unavailable;
        }

        lock (_lock)
        {
            if (!_records.TryGetValue(sessionId, out var held))
            {
                if (_ended.Contains(sessionId))
                {
                    return ClaimOutcome.Lost;
                }

                _records[sessionId] = new SessionRecord(sessionId, owner, fromEpoch + 1, 0, [], SessionRecord.EmptyDigest, now, expiresAt) { MovingUntil = movingUntil };
                return ClaimOutcome.Won;
            }

            if (held.Epoch > fromEpoch || held.MovingUntil > now)
            {
                return ClaimOutcome.Lost;
            }

            _records[sessionId] = held with
            {
                Owner = owner,
                Epoch = fromEpoch + 1,
                MovingUntil = movingUntil,
                LastAccess = Math.Max(held.LastAccess, now),
                ExpiresAt = Math.Max(held.ExpiresAt, expiresAt),
            };
            return ClaimOutcome.Won;
        }
    }

    public async Task<WriteOutcome> ReleaseAsync(string sessionId, long epoch)
    {
        if (!await ReachAsync("release", sessionId))
        {
            return WriteOutcome.Unavailable;
        }

        lock (_lock)
        {
            if (_records.TryGetValue(sessionId, out var held) && held.Epoch == epoch)
            {
                _records[sessionId] = held with { MovingUntil = 0 };
            }
        }

        return WriteOutcome.Written;
    }

    public async Task<WriteOutcome> TouchAsync(string sessionId, long lastAccess, long expiresAt)
    {
        if (!await ReachAsync("touch", sessionId))
        {
            return WriteOutcome.Unavailable;
        }

        lock (_lock)
        {
            if (_records.TryGetValue(sessionId, out var held))
            {
                _records[sessionId] = held with { LastAccess = Math.Max(held.LastAccess, lastAccess), ExpiresAt = Math.Max(held.ExpiresAt, expiresAt) };
            }
        }

        return WriteOutcome.Written;
    }

    public async Task<WriteOutcome> EndAsync(string sessionId)
    {
        if (!await ReachAsync("end", sessionId))
        {
            return WriteOutcome.Unavailable;
        }

        lock (_lock)
        {
            _records.Remove(sessionId);
            _ended.Add(sessionId);
        }

        return WriteOutcome.Written;
    }

    public async Task<int?> PurgeAsync(long now)
    {
        if (!await ReachAsync("purge", "-"))
        {
            return null;
        }

        lock (_lock)
        {
            var expired = _records.Values.Where(r => r.ExpiresAt < now).Select(r => r.SessionId).ToList();
            expired.ForEach(id => _records.Remove(id));
            return expired.Count;
        }
    }

    public Task<TierRead> GetAsync(string sessionId, CancellationToken cancellationToken)
        => Task.FromResult(Down ? TierRead.Unavailable : new TierRead(true, this[sessionId]));

    public Task<bool?> HasEndedAsync(string sessionId, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            return Task.FromResult<bool?>(Down ? null : _ended.Contains(sessionId));
        }
    }

    public TierScan ScanLive(long cutoff) => new(_ => ReadLiveAsync(cutoff));

    public Task<bool> WaitAvailableAsync(TimeSpan timeout, CancellationToken cancellationToken) => Task.FromResult(!Down);

    public bool IsUnavailable(Exception exception) => exception is IOException;

    private async IAsyncEnumerable<SessionSummary> ReadLiveAsync(long cutoff, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (Down)
        {
            throw new IOException(LastFailure);
        }

        List<SessionSummary> live;
        lock (_lock)
        {
            live = [.. _records.Values.Where(r => r.LastAccess >= cutoff).Select(r => r.Summary)];
        }

        foreach (var summary in live)
        {
            await Task.Yield();
            yield return summary;
        }
    }

    private async Task<bool> ReachAsync(string kind, string sessionId)
    {
        if (Hold is { } hold)
        {
            await hold.Task;
        }

        lock (_lock)
        {
            Writes.Add((Down ? kind + " refused" : kind, sessionId));
        }

        return !Down;
    }
}
