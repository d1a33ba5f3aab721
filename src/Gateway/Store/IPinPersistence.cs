namespace Baton.Gateway.Store;

/// <summary>Where the pin table keeps its pins so that a restarted gateway, or another one, still knows them.</summary>
internal interface IPinPersistence
{
    /// <summary>Durably pins the session to <paramref name="owner"/> in move count <paramref name="epoch"/> (as durable as the durability mode asks).</summary>
    Task MoveAsync(string sessionId, string owner, long epoch, long now);

    /// <summary>Records that the session was used; best effort, in the background.</summary>
    void Touch(string sessionId, long now);

    /// <summary>Forgets the session everywhere (it ended or expired); best effort, in the background.</summary>
    void End(string sessionId);

    /// <summary>Every session used at or after <paramref name="cutoff"/> (Unix ms).</summary>
    Task<List<SessionSummary>> LoadLiveAsync(long cutoff, CancellationToken cancellationToken);

    /// <summary>
    /// True when the tiers may hold live sessions the pin table never loaded: a journal other gateways share, or a
    /// local journal that began empty and could not yet be rebuilt from all Redis holds.
    /// </summary>
    bool MayHoldUnknown { get; }

    /// <summary>True when other gateways use the same tiers: a session idle here may be in use there.</summary>
    bool IsShared { get; }

    /// <summary>What the tiers hold of one session the pin table does not know; null when none holds it.</summary>
    Task<SessionSummary?> FindAsync(string sessionId, CancellationToken cancellationToken);
}
