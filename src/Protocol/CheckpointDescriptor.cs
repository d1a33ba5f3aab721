namespace Baton.Protocol;

/// <summary>
/// Backend → gateway, header <c>Baton-Checkpoint</c> on a response: the response body begins with
/// <see cref="Length"/> bytes of session state, version <see cref="Version"/> of epoch <see cref="Epoch"/>,
/// then the app's own body. Signed with the checkpoint key and bound to the backend process that made it.
/// Version 2 of the message carries the epoch; version 1 (without it) is still read, for backends that
/// have not upgraded.
/// </summary>
/// <param name="SessionId">The session the state belongs to; must match the request's grant.</param>
/// <param name="Version">The state's version: one more than the version it was derived from.</param>
/// <param name="Epoch">The epoch the backend held the session in when it made the state; null from a version 1 message.</param>
/// <param name="Length">Bytes of state at the start of the body.</param>
/// <param name="Sha256">SHA-256 of those bytes (43 characters).</param>
/// <param name="Incarnation">The backend process's incarnation id (22 characters).</param>
public sealed record CheckpointDescriptor(string SessionId, long Version, long? Epoch, int Length, string Sha256, string Incarnation)
{
    private static readonly string[] Keys = ["v", "sid", "ver", "epoch", "len", "sha256", "inc", "mac"];
    private static readonly string[] KeysV1 = ["v", "sid", "ver", "len", "sha256", "inc", "mac"];

    /// <summary>The message's version on the wire: 2 with an epoch, 1 without.</summary>
    public int MessageVersion => Epoch is null ? 1 : 2;

    /// <summary>The <c>Baton-Checkpoint</c> header value, signed with the checkpoint key.</summary>
    public string Format(ProtocolKeys keys)
        => Epoch is { } epoch
            ? FormattableString.Invariant($"v=2; sid={SessionId}; ver={Version}; epoch={epoch}; len={Length}; sha256={Sha256}; inc={Incarnation}; mac={Mac.Compute(keys.Checkpoint, Canonical())}")
            : FormattableString.Invariant($"v=1; sid={SessionId}; ver={Version}; len={Length}; sha256={Sha256}; inc={Incarnation}; mac={Mac.Compute(keys.Checkpoint, Canonical())}");

    /// <summary>
    /// Reads a <c>Baton-Checkpoint</c> header value strictly (each key once, no others, canonical values) and checks its MAC.
    /// Never throws: the value arrives from the network.
    /// </summary>
    public static ProtocolVerdict TryParse(string? header, ProtocolKeys keys, out CheckpointDescriptor? checkpoint)
    {
        checkpoint = null;
        Span<string?> v = new string?[Keys.Length];
        if (header?.StartsWith("v=1;", StringComparison.Ordinal) == true)
        {
            var readV1 = ParameterList.Read(header, KeysV1, v[..KeysV1.Length], version: "1");
            return readV1 == ProtocolVerdict.Valid ? Build(v[1], v[2], epoch: null, v[3], v[4], v[5], v[6], keys, out checkpoint) : readV1;
        }

        var read = ParameterList.Read(header, Keys, v, version: "2");
        if (read != ProtocolVerdict.Valid)
        {
            return read;
        }

        return ParameterList.TryParseLong(v[3], 0, long.MaxValue, out var epoch)
            ? Build(v[1], v[2], epoch, v[4], v[5], v[6], v[7], keys, out checkpoint)
            : ProtocolVerdict.Malformed;
    }

    private static ProtocolVerdict Build(string? sid, string? ver, long? epoch, string? len, string? sha256, string? inc, string? mac, ProtocolKeys keys, out CheckpointDescriptor? checkpoint)
    {
        checkpoint = null;
        if (!Ids.IsValidId(sid)
            || !ParameterList.TryParseLong(ver, 1, long.MaxValue, out var version)
            || !ParameterList.TryParseLong(len, 0, int.MaxValue, out var length)
            || !Ids.IsValidDigest(sha256)
            || !Ids.IsValidId(inc))
        {
            return ProtocolVerdict.Malformed;
        }

        var candidate = new CheckpointDescriptor(sid!, version, epoch, (int)length, sha256!, inc!);
        if (!Mac.Verify(keys.Checkpoint, candidate.Canonical(), mac!))
        {
            return ProtocolVerdict.BadSignature;
        }

        checkpoint = candidate;
        return ProtocolVerdict.Valid;
    }

    internal string Canonical()
        => Epoch is { } epoch
            ? FormattableString.Invariant($"checkpoint\n2\n{SessionId}\n{Version}\n{epoch}\n{Length}\n{Sha256}\n{Incarnation}")
            : FormattableString.Invariant($"checkpoint\n1\n{SessionId}\n{Version}\n{Length}\n{Sha256}\n{Incarnation}");
}
