namespace Baton.Gateway.Sessions;

/// <summary>
/// The session a proxied request belongs to, as resolved by the session middleware: an existing session
/// with its pin, or a new one whose cookie is issued with the response.
/// </summary>
internal sealed class BatonSessionFeature(SessionId id, string? pinnedDestinationId, long version, long epoch, bool isNew)
{
    public SessionId Id { get; } = id;

    /// <summary>The destination the session is pinned to; null for a session that has not been served yet.</summary>
    public string? PinnedDestinationId { get; set; } = pinnedDestinationId;

    /// <summary>The newest checkpoint version stored for the session when the request arrived; 0 for none.</summary>
    public long Version { get; set; } = version;

    /// <summary>The session's move count; changes when a failover moves it.</summary>
    public long Epoch { get; set; } = epoch;

    /// <summary>
    /// When this request stops waiting (for its session's lock, a destination, a restore): set at its first wait,
    /// <c>NoDestinationWait</c> later, and kept for every later attempt of the request.
    /// </summary>
    public DateTimeOffset? WaitDeadline { get; set; }

    /// <summary>True when this attempt's grant offered the backend to send its checkpoint as a delta (<c>Baton-Deltas</c>).</summary>
    public bool DeltasOffered { get; set; }

    /// <summary>True when the gateway issued this id for this request and must send the cookie.</summary>
    public bool IsNew { get; } = isNew;

    /// <summary>
    /// True once the failover step found the session renewed or ended (a login or logout, here, on another gateway or as
    /// its backend said) while this request was on its way: nothing of it is restored or served; the request is refused.
    /// </summary>
    public bool Gone { get; set; }
}
