using Baton.Protocol;

namespace Baton.Gateway.Sessions;

/// <summary>
/// Baton's own session id: 128 random bits in canonical base64url without padding (22 characters).
/// <see cref="ToString"/> gives a short hash, never the id, so an id cannot leak into logs by accident.
/// </summary>
internal readonly record struct SessionId
{
    public const int EncodedLength = ProtocolConstants.IdLength;

    private SessionId(string value) => Value = value;

    /// <summary>The id as it travels in the cookie and the protocol.</summary>
    public string Value { get; }

    /// <summary>A short, stable hash of the id, for logs and traces.</summary>
    public string Hash => Ids.LogHash(Value ?? string.Empty);

    public static SessionId New() => new(Ids.New());

    /// <summary>Accepts exactly the canonical encoding of 16 bytes, nothing else.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out SessionId id)
    {
        id = Ids.IsValidId(text) ? new SessionId(text.ToString()) : default;
        return id.Value is not null;
    }

    public override string ToString() => "sid#" + Hash;
}
