namespace Baton.Protocol;

/// <summary>What a backend asks the gateway to do with a session's identity.</summary>
public enum SessionActionKind
{
    /// <summary>Give the session a new id (at login): the new id carries the state, the old one is dead everywhere.</summary>
    Rotate,

    /// <summary>End the session (at logout): its state is dropped everywhere and its cookie expired.</summary>
    End,
}

/// <summary>
/// Backend → gateway, header <c>Baton-Session-Action</c> on a response: rotate or end the request's
/// session, honoured in that same response. Signed with the action key.
/// </summary>
/// <param name="SessionId">The session the action is for; must match the request's grant.</param>
/// <param name="Action">What to do.</param>
public sealed record SessionAction(string SessionId, SessionActionKind Action)
{
    private static readonly string[] Keys = ["v", "sid", "action", "mac"];

    /// <summary>The <c>Baton-Session-Action</c> header value, signed with the session action key.</summary>
    public string Format(ProtocolKeys keys)
        => FormattableString.Invariant($"v=1; sid={SessionId}; action={Name(Action)}; mac={Mac.Compute(keys.Action, Canonical())}");

    /// <summary>
    /// Reads a <c>Baton-Session-Action</c> header value strictly (each key once, no others, canonical values) and checks its MAC.
    /// Never throws: the value arrives from the network.
    /// </summary>
    public static ProtocolVerdict TryParse(string? header, ProtocolKeys keys, out SessionAction? action)
    {
        action = null;
        Span<string?> v = new string?[Keys.Length];
        var read = ParameterList.Read(header, Keys, v);
        if (read != ProtocolVerdict.Valid)
        {
            return read;
        }

        SessionActionKind? kind = v[2] switch
        {
            "rotate" => SessionActionKind.Rotate,
            "end" => SessionActionKind.End,
            _ => null,
        };
        if (!Ids.IsValidId(v[1]) || kind is null)
        {
            return ProtocolVerdict.Malformed;
        }

        var candidate = new SessionAction(v[1]!, kind.Value);
        if (!Mac.Verify(keys.Action, candidate.Canonical(), v[3]!))
        {
            return ProtocolVerdict.BadSignature;
        }

        action = candidate;
        return ProtocolVerdict.Valid;
    }

    internal string Canonical() => FormattableString.Invariant($"action\n1\n{SessionId}\n{Name(Action)}");

    private static string Name(SessionActionKind action) => action == SessionActionKind.Rotate ? "rotate" : "end";
}
