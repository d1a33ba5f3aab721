namespace Baton.Protocol;

/// <summary>
/// Backend → gateway, header <c>Baton-Checkpoint</c> on a response: the response body begins with
/// <see cref="Length"/> bytes of session state, version <see cref="Version"/>, then the app's own body.
/// Signed with the checkpoint key and bound to the backend process that made it.
/// </summary>
/// <param name="SessionId">The session the state belongs to; must match the request's grant.</param>
/// <param name="Version">The state's version: one more than the version it was derived from.</param>
/// <param name="Length">Bytes of state at the start of the body.</param>
/// <param name="Sha256">SHA-256 of those bytes (43 characters).</param>
/// <param name="Incarnation">The backend process's incarnation id (22 characters).</param>
public sealed record CheckpointDescriptor(string SessionId, long Version, int Length, string Sha256, string Incarnation)
{
    private static readonly string[] Keys = ["v", "sid", "ver", "len", "sha256", "inc", "mac"];

    public string Format(ProtocolKeys keys)
        => FormattableString.Invariant($"v=1; sid={SessionId}; ver={Version}; len={Length}; sha256={Sha256}; inc={Incarnation}; mac={Mac.Compute(keys.Checkpoint, Canonical())}");

    public static ProtocolVerdict TryParse(string? header, ProtocolKeys keys, out CheckpointDescriptor? checkpoint)
    {
        checkpoint = null;
        Span<string?> v = new string?[Keys.Length];
        var read = ParameterList.Read(header, Keys, v);
        if (read != ProtocolVerdict.Valid)
        {
            return read;
        }

        if (!Ids.IsValidId(v[1])
            || !ParameterList.TryParseLong(v[2], 1, long.MaxValue, out var ver)
            || !ParameterList.TryParseLong(v[3], 0, int.MaxValue, out var len)
            || !Ids.IsValidDigest(v[4])
            || !Ids.IsValidId(v[5]))
        {
            return ProtocolVerdict.Malformed;
        }

        var candidate = new CheckpointDescriptor(v[1]!, ver, (int)len, v[4]!, v[5]!);
        if (!Mac.Verify(keys.Checkpoint, candidate.Canonical(), v[6]!))
        {
            return ProtocolVerdict.BadSignature;
        }

        checkpoint = candidate;
        return ProtocolVerdict.Valid;
    }

    internal string Canonical() => FormattableString.Invariant($"checkpoint\n1\n{SessionId}\n{Version}\n{Length}\n{Sha256}\n{Incarnation}");
}
