namespace Baton.Protocol;

/// <summary>What a receiver makes of a protocol header.</summary>
public enum ProtocolVerdict
{
    /// <summary>Well-formed and signed with the shared secret.</summary>
    Valid,

    /// <summary>No header.</summary>
    Missing,

    /// <summary>Not the syntax of this message (unknown, missing or repeated fields, bad values).</summary>
    Malformed,

    /// <summary>A protocol version this side does not speak.</summary>
    UnsupportedVersion,

    /// <summary>The MAC does not hold: forged, altered, or another secret.</summary>
    BadSignature,
}
