namespace Baton.Gateway.Store;

/// <summary>Where the pin table keeps its pins so that a restarted gateway, or another one, still knows them.</summary>
internal interface IPinPersistence
{
    /// <summary>
    /// Claims a move of the session into epoch <paramref name="fromEpoch"/> + 1 onto <paramref name="owner"/>: exactly
    /// one of the claims of all gateways wins (see <see cref="IDurableTier.ClaimAsync"/>). With a
    /// <paramref name="lease"/>, the other gateways wait for the winner's restore until it calls
    /// <see cref="ReleaseAsync"/> or the lease runs out; without one, the new pin is announced at once.
    /// </summary>
    Task<ClaimOutcome> ClaimAsync(string sessionId, string owner, long fromEpoch, long now, TimeSpan lease);

    /// <summary>Ends the lease of a won claim (its restore is done or given up) and announces the new pin (an <paramref name="owner"/> given: the restore is done).</summary>
    Task ReleaseAsync(string sessionId, string? owner, long epoch);

    /// <summary>Records that the session was used; best effort, in the background.</summary>
    void Touch(string sessionId, long now);

    /// <summary>Forgets the session everywhere (it ended or expired), and tells the other gateways; best effort, in the background.</summary>
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

    /// <summary>True while the other gateways' announcements are heard (see <see cref="IPinChannel"/>).</summary>
    bool IsListening { get; }

    /// <summary>Hears the announcements of every gateway sharing the tiers (see <see cref="IPinChannel.Listen"/>).</summary>
    void Listen(Action<PinNotice> onNotice, Action onMissed);
}

/// <summary>A gateway's announcement that a session is pinned to <see cref="Owner"/> in <see cref="Epoch"/>, or, with no owner, that it ended.</summary>
internal readonly record struct PinNotice(string SessionId, string? Owner, long Epoch)
{
    /// <summary>The notice as sent: <c>pin epoch id owner</c> (the owner last: a destination id may hold spaces), or <c>end id</c>.</summary>
    public string Encode() => Owner is null ? $"end {SessionId}" : FormattableString.Invariant($"pin {Epoch} {SessionId} {Owner}");

    /// <summary>A notice as received; null for anything else.</summary>
    public static PinNotice? Decode(string? text)
    {
        var parts = text?.Split(' ', 4);
        return parts switch
        {
            ["end", var id] => new PinNotice(id, null, 0),
            ["pin", var epoch, var id, var owner] when long.TryParse(epoch, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number)
                => new PinNotice(id, owner, number),
            _ => null,
        };
    }
}

/// <summary>
/// How gateways sharing the tiers tell each other of new pins and ends, so that each one's pin table stays a coherent
/// cache: at most once, in order per sender (Redis pub/sub). A notice can be missed while the channel is down; a
/// listener is then told so, and revalidates what it holds. Correctness never rests on it: a stale pin's checkpoints
/// are fenced by epoch, and its moves lose their claims.
/// </summary>
internal interface IPinChannel
{
    /// <summary>True while subscribed: notices sent now are heard.</summary>
    bool IsListening { get; }

    /// <summary>Sends the notice to every listening gateway (this one too); best effort.</summary>
    void Announce(PinNotice notice);

    /// <summary>Calls <paramref name="onNotice"/> for each notice heard, and <paramref name="onMissed"/> whenever the channel comes back after it was lost (notices may have been missed).</summary>
    void Listen(Action<PinNotice> onNotice, Action onMissed);
}
