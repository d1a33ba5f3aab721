namespace Baton.Gateway.Store;

/// <summary>One delta as a journal keeps it after a session's whole state: the version it made and the one it counts from.</summary>
internal sealed record JournalLink(long Version, long Base, byte[] Delta, string Digest);

/// <summary>How a journal gives back a session it keeps as a whole state and the deltas stored after it.</summary>
internal static class JournalChain
{
    /// <summary>
    /// <paramref name="stored"/> (the session's record, with its whole state at <paramref name="stateVersion"/>) made
    /// whole: the links after that state folded in. The links must carry on from the state and each other — each counts
    /// from at most the version before it (it holds every change since its base) — and end at the session's version;
    /// a chain that does not (a link missing) or does not fold is returned with <see cref="StateChain.DamagedDigest"/>.
    /// </summary>
    public static SessionRecord Whole(SessionRecord stored, long stateVersion, IReadOnlyList<JournalLink> links)
    {
        if (links.Count == 0 && stateVersion == stored.Version)
        {
            return stored;
        }

        var reached = stateVersion;
        foreach (var link in links)
        {
            if (link.Base > reached || link.Version <= reached)
            {
                return stored with { Digest = StateChain.DamagedDigest };
            }

            reached = link.Version;
        }

        if (reached != stored.Version)
        {
            return stored with { Digest = StateChain.DamagedDigest };
        }

        var (state, digest) = StateChain.Fold(stored.State, stored.Digest, links.Select(l => new DeltaLink(l.Delta, l.Digest)).ToList());
        return stored with { State = state, Digest = digest };
    }

    /// <summary>What a journal answers a delta that is not stored, from the session's epoch and version (null: no session).</summary>
    public static SaveOutcome Refused(SessionRecord delta, long? epoch, long version) => epoch switch
    {
        null => SaveOutcome.Unapplicable,
        { } e when e > delta.Epoch => SaveOutcome.Fenced,
        { } e when version >= delta.Version => e == delta.Epoch ? SaveOutcome.Stale : SaveOutcome.Diverged,
        _ => SaveOutcome.Unapplicable,
    };
}
