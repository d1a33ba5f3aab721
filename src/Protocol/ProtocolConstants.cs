namespace Baton.Protocol;

/// <summary>Names and fixed values of Baton's wire protocol, version 1. See docs/protocol.md.</summary>
public static class ProtocolConstants
{
    /// <summary>The protocol version every message carries as <c>v=1</c>.</summary>
    public const int Version = 1;

    /// <summary>Every protocol header starts with this (case-insensitive; <c>_</c> counts as <c>-</c>).</summary>
    public const string HeaderPrefix = "Baton-";

    /// <summary>Gateway → backend, on every proxied request: the authenticated session grant.</summary>
    public const string SessionHeader = "Baton-Session";

    /// <summary>
    /// Gateway → backend, beside the grant: <c>1</c> when the gateway takes a delta onto the grant's version for this
    /// request's checkpoint (see <see cref="CheckpointDescriptor"/>). Absent: the backend sends the whole state.
    /// </summary>
    public const string DeltasHeader = "Baton-Deltas";

    /// <summary>Backend → gateway: the response body starts with the session's new state.</summary>
    public const string CheckpointHeader = "Baton-Checkpoint";

    /// <summary>Gateway → backend, on <see cref="RestorePath"/>: the state to install.</summary>
    public const string RestoreHeader = "Baton-Restore";

    /// <summary>Backend → gateway, on every response: the backend process's incarnation id.</summary>
    public const string IncarnationHeader = "Baton-Incarnation";

    /// <summary>Backend → gateway, with 409: the backend's memory is older than the gateway's checkpoint.</summary>
    public const string StaleHeader = "Baton-Stale";

    /// <summary>
    /// Backend → gateway, with 410: the request's session was rotated away from or ended on this backend
    /// (<c>sid=&lt;id&gt;</c>). The gateway never restores such a session; a restore of it is refused 410 too.
    /// </summary>
    public const string RetiredHeader = "Baton-Retired";

    /// <summary>Backend → gateway: rotate or end the request's session (<see cref="SessionAction"/>).</summary>
    public const string SessionActionHeader = "Baton-Session-Action";

    /// <summary>
    /// The secret both sides use when none is configured, in the Development environment only. Public
    /// knowledge: anywhere else a missing <c>Baton:Secret</c> stops startup.
    /// </summary>
    public const string DevelopmentSecret = "baton-development-secret-never-use-in-production";

    /// <summary>The shortest <c>Baton:Secret</c> either side accepts.</summary>
    public const int MinimumSecretLength = 32;

    /// <summary>The backend endpoint that accepts restores.</summary>
    public const string RestorePath = "/_baton/restore";

    /// <summary>Length of a session id and an incarnation id: 16 random bytes in base64url.</summary>
    public const int IdLength = 22;

    /// <summary>Length of a MAC or a SHA-256 digest: 32 bytes in base64url.</summary>
    public const int DigestLength = 43;

    /// <summary>True for any protocol header name in any spelling: case-insensitive, <c>_</c> and <c>-</c> alike.</summary>
    public static bool IsProtocolHeader(string name)
    {
        if (name.Length < HeaderPrefix.Length)
        {
            return false;
        }

        for (var i = 0; i < HeaderPrefix.Length; i++)
        {
            var c = name[i] == '_' ? '-' : char.ToLowerInvariant(name[i]);
            if (c != char.ToLowerInvariant(HeaderPrefix[i]))
            {
                return false;
            }
        }

        return true;
    }
}
