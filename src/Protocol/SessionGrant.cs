namespace Baton.Protocol;

/// <summary>
/// Gateway → backend, header <c>Baton-Session</c> on every proxied request: which session the request
/// belongs to, the newest version the gateway has stored for it, the session's idle timeout, the largest
/// state the gateway accepts, and when the grant was made. Signed with the grant key.
/// </summary>
/// <param name="SessionId">The gateway's session id (22 characters).</param>
/// <param name="Version">The newest checkpoint version the gateway holds; 0 when it holds none.</param>
/// <param name="Epoch">How many times the session has moved to another backend; a backend whose copy is from another epoch must not serve it.</param>
/// <param name="TtlMilliseconds">The session's idle timeout.</param>
/// <param name="MaxStateBytes">The largest state the gateway stores.</param>
/// <param name="Timestamp">When the gateway made the grant, in Unix milliseconds.</param>
public sealed record SessionGrant(string SessionId, long Version, long Epoch, long TtlMilliseconds, int MaxStateBytes, long Timestamp)
{
    private static readonly string[] Keys = ["v", "sid", "ver", "epoch", "ttl", "max", "ts", "mac"];

    /// <summary>The <c>Baton-Session</c> header value, signed with the grant key.</summary>
    public string Format(ProtocolKeys keys)
        => FormattableString.Invariant($"v=1; sid={SessionId}; ver={Version}; epoch={Epoch}; ttl={TtlMilliseconds}; max={MaxStateBytes}; ts={Timestamp}; mac={Mac.Compute(keys.Grant, Canonical())}");

    /// <summary>
    /// Reads a <c>Baton-Session</c> header value strictly (each key once, no others, canonical values) and checks its MAC.
    /// Never throws: the value arrives from the network.
    /// </summary>
    public static ProtocolVerdict TryParse(string? header, ProtocolKeys keys, out SessionGrant? grant)
    {
        grant = null;
        Span<string?> v = new string?[Keys.Length];
        var read = ParameterList.Read(header, Keys, v);
        if (read != ProtocolVerdict.Valid)
        {
            return read;
        }

        if (!Ids.IsValidId(v[1])
            || !ParameterList.TryParseLong(v[2], 0, long.MaxValue, out var ver)
            || !ParameterList.TryParseLong(v[3], 0, long.MaxValue, out var epoch)
            || !ParameterList.TryParseLong(v[4], 1, long.MaxValue, out var ttl)
            || !ParameterList.TryParseLong(v[5], 0, int.MaxValue, out var max)
            || !ParameterList.TryParseLong(v[6], 0, long.MaxValue, out var ts))
        {
            return ProtocolVerdict.Malformed;
        }

        var candidate = new SessionGrant(v[1]!, ver, epoch, ttl, (int)max, ts);
        if (!Mac.Verify(keys.Grant, candidate.Canonical(), v[7]!))
        {
            return ProtocolVerdict.BadSignature;
        }

        grant = candidate;
        return ProtocolVerdict.Valid;
    }

    internal string Canonical() => FormattableString.Invariant($"grant\n1\n{SessionId}\n{Version}\n{Epoch}\n{TtlMilliseconds}\n{MaxStateBytes}\n{Timestamp}");
}
