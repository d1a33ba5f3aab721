namespace Baton.Protocol;

/// <summary>
/// Gateway → backend, header <c>Baton-Restore</c> on <c>POST /_baton/restore</c>: install this state
/// (the request body, <see cref="Length"/> bytes) as version <see cref="Version"/> of the session, in
/// epoch <see cref="Epoch"/> (the session's move count).
/// Signed with the restore key; bound to one backend process (<see cref="Target"/>), a time and a nonce.
/// </summary>
public sealed record RestoreDescriptor(string SessionId, long Version, long Epoch, int Length, string Sha256, string Target, long Timestamp, string Nonce)
{
    private static readonly string[] Keys = ["v", "sid", "ver", "epoch", "len", "sha256", "target", "ts", "nonce", "mac"];

    /// <summary>The <c>Baton-Restore</c> header value, signed with the restore key.</summary>
    public string Format(ProtocolKeys keys)
        => FormattableString.Invariant($"v=1; sid={SessionId}; ver={Version}; epoch={Epoch}; len={Length}; sha256={Sha256}; target={Target}; ts={Timestamp}; nonce={Nonce}; mac={Mac.Compute(keys.Restore, Canonical())}");

    /// <summary>
    /// Reads a <c>Baton-Restore</c> header value strictly (each key once, no others, canonical values) and checks its MAC.
    /// Never throws: the value arrives from the network.
    /// </summary>
    public static ProtocolVerdict TryParse(string? header, ProtocolKeys keys, out RestoreDescriptor? restore)
    {
        restore = null;
        Span<string?> v = new string?[Keys.Length];
        var read = ParameterList.Read(header, Keys, v);
        if (read != ProtocolVerdict.Valid)
        {
            return read;
        }

        if (!Ids.IsValidId(v[1])
            || !ParameterList.TryParseLong(v[2], 0, long.MaxValue, out var ver)
            || !ParameterList.TryParseLong(v[3], 0, long.MaxValue, out var epoch)
            || !ParameterList.TryParseLong(v[4], 0, int.MaxValue, out var len)
            || !Ids.IsValidDigest(v[5])
            || !Ids.IsValidId(v[6])
            || !ParameterList.TryParseLong(v[7], 0, long.MaxValue, out var ts)
            || !Ids.IsValidId(v[8]))
        {
            return ProtocolVerdict.Malformed;
        }

        var candidate = new RestoreDescriptor(v[1]!, ver, epoch, (int)len, v[5]!, v[6]!, ts, v[8]!);
        if (!Mac.Verify(keys.Restore, candidate.Canonical(), v[9]!))
        {
            return ProtocolVerdict.BadSignature;
        }

        restore = candidate;
        return ProtocolVerdict.Valid;
    }

    internal string Canonical() => FormattableString.Invariant($"restore\n1\n{SessionId}\n{Version}\n{Epoch}\n{Length}\n{Sha256}\n{Target}\n{Timestamp}\n{Nonce}");
}
