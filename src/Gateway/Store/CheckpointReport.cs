namespace Baton.Gateway.Store;

/// <summary>
/// What the tiers said of one checkpoint besides its outcome, for the gateway's pin of the session: whether a tier fell
/// behind on it (it could not apply a delta, or missed the write), and how long the chain of deltas a tier holds after
/// the session's whole state is once this delta is stored — counted by the tier, so deltas other gateways stored, or
/// this one before a restart, count too. A whole state reports no chain.
/// </summary>
internal sealed class CheckpointReport
{
    private bool _tierBehind;
    private int _links;
    private long _linkBytes;

    /// <summary>True once a tier fell behind on the session: its next checkpoint should be whole.</summary>
    public bool TierBehind
    {
        get
        {
            lock (this)
            {
                return _tierBehind;
            }
        }
    }

    /// <summary>The longest chain a tier reported: its links and their bytes (0 and 0 when none did).</summary>
    public (int Links, long Bytes) Chain
    {
        get
        {
            lock (this)
            {
                return (_links, _linkBytes);
            }
        }
    }

    public void NoteTierBehind()
    {
        lock (this)
        {
            _tierBehind = true;
        }
    }

    /// <summary>A tier holds <paramref name="links"/> deltas of <paramref name="bytes"/> after the whole state; the larger count is kept.</summary>
    public void NoteChain(long links, long bytes)
    {
        lock (this)
        {
            _links = (int)Math.Clamp(Math.Max(_links, links), 0, int.MaxValue);
            _linkBytes = Math.Max(_linkBytes, bytes);
        }
    }
}
