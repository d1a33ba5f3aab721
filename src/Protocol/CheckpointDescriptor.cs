namespace Baton.Protocol;

/// <summary>
/// Backend → gateway, header <c>Baton-Checkpoint</c> on a response: the response body begins with
/// <see cref="Length"/> bytes of session state, version <see cref="Version"/> of epoch <see cref="Epoch"/>,
/// then the app's own body. Signed with the checkpoint key and bound to the backend process that made it.
/// Version 2 of the message carries the epoch; version 1 (without it) is still read, for backends that
/// have not upgraded. Version 3 is a delta: the body begins with the keys set and removed since version
/// <see cref="Base"/> (see <see cref="KeyedState"/>) rather than the whole state.
/// </summary>
/// <param name="SessionId">The session the state belongs to; must match the request's grant.</param>
/// <param name="Version">The state's version: one more than the version it was derived from.</param>
/// <param name="Epoch">The epoch the backend held the session in when it made the state; null from a version 1 message.</param>
/// <param name="Length">Bytes of state at the start of the body.</param>
/// <param name="Sha256">SHA-256 of those bytes (43 characters).</param>
/// <param name="Incarnation">The backend process's incarnation id (22 characters).</param>
/// <param name="Base">For a delta (version 3): the version the delta's changes are counted from — the grant's; null for a whole state.</param>
/// <param name="StateSize">For a delta: how many bytes the whole state at <paramref name="Version"/> takes; null for a whole state.</param>
public sealed record CheckpointDescriptor(string SessionId, long Version, long? Epoch, int Length, string Sha256, string Incarnation, long? Base = null, int? StateSize = null)
{
    private static readonly string[] KeysV3 = ["v", "sid", "ver", "epoch", "base", "len", "size", "sha256", "inc", "mac"];
    private static readonly string[] Keys = ["v", "sid", "ver", "epoch", "len", "sha256", "inc", "mac"];
    private static readonly string[] KeysV1 = ["v", "sid", "ver", "len", "sha256", "inc", "mac"];

    /// <summary>The message's version on the wire: 3 for a delta, 2 for a whole state with an epoch, 1 without.</summary>
    public int MessageVersion => Base is not null ? 3 : Epoch is null ? 1 : 2;

    /// <summary>True for a delta: the body leads with the changes since <see cref="Base"/>, not the whole state.</summary>
    public bool IsDelta => Base is not null;

    /// <summary>Bytes of the whole state at <see cref="Version"/>: <see cref="StateSize"/> for a delta, else <see cref="Length"/>.</summary>
    public int WholeSize => StateSize ?? Length;

    /// <summary>The <c>Baton-Checkpoint</c> header value, signed with the checkpoint key.</summary>
    public string Format(ProtocolKeys keys) => MessageVersion switch
    {
        3 => FormattableString.Invariant($"v=3; sid={SessionId}; ver={Version}; epoch={Epoch}; base={Base}; len={Length}; size={StateSize}; sha256={Sha256}; inc={Incarnation}; mac={Mac.Compute(keys.Checkpoint, Canonical())}"),
        2 => FormattableString.Invariant($"v=2; sid={SessionId}; ver={Version}; epoch={Epoch}; len={Length}; sha256={Sha256}; inc={Incarnation}; mac={Mac.Compute(keys.Checkpoint, Canonical())}"),
        _ => FormattableString.Invariant($"v=1; sid={SessionId}; ver={Version}; len={Length}; sha256={Sha256}; inc={Incarnation}; mac={Mac.Compute(keys.Checkpoint, Canonical())}"),
    };

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

        if (header?.StartsWith("v=3;", StringComparison.Ordinal) == true)
        {
            Span<string?> d = new string?[KeysV3.Length];
            var readV3 = ParameterList.Read(header, KeysV3, d, version: "3");
            if (readV3 != ProtocolVerdict.Valid)
            {
                return readV3;
            }

            // A delta counts from a stored version (at least 1) below its own, and the whole state it makes is a state's size.
            return ParameterList.TryParseLong(d[3], 0, long.MaxValue, out var deltaEpoch)
                && ParameterList.TryParseLong(d[4], 1, long.MaxValue, out var deltaBase)
                && ParameterList.TryParseLong(d[6], 0, int.MaxValue, out var size)
                && ParameterList.TryParseLong(d[2], 1, long.MaxValue, out var deltaVersion) && deltaBase < deltaVersion
                ? Build(d[1], d[2], deltaEpoch, d[5], d[7], d[8], d[9], keys, out checkpoint, deltaBase, (int)size)
                : ProtocolVerdict.Malformed;
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

    private static ProtocolVerdict Build(string? sid, string? ver, long? epoch, string? len, string? sha256, string? inc, string? mac, ProtocolKeys keys, out CheckpointDescriptor? checkpoint, long? deltaBase = null, int? size = null)
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

        var candidate = new CheckpointDescriptor(sid!, version, epoch, (int)length, sha256!, inc!, deltaBase, size);
        if (!Mac.Verify(keys.Checkpoint, candidate.Canonical(), mac!))
        {
            return ProtocolVerdict.BadSignature;
        }

        checkpoint = candidate;
        return ProtocolVerdict.Valid;
    }

    internal string Canonical() => MessageVersion switch
    {
        3 => FormattableString.Invariant($"checkpoint\n3\n{SessionId}\n{Version}\n{Epoch}\n{Base}\n{Length}\n{StateSize}\n{Sha256}\n{Incarnation}"),
        2 => FormattableString.Invariant($"checkpoint\n2\n{SessionId}\n{Version}\n{Epoch}\n{Length}\n{Sha256}\n{Incarnation}"),
        _ => FormattableString.Invariant($"checkpoint\n1\n{SessionId}\n{Version}\n{Length}\n{Sha256}\n{Incarnation}"),
    };
}
