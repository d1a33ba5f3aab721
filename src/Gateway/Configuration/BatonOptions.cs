namespace Baton.Gateway.Configuration;

/// <summary>The gateway's own settings, bound from the <c>Baton</c> configuration section.</summary>
public sealed class BatonOptions
{
    /// <summary>
    /// The secret shared by the gateway and its backends (<c>Baton:Secret</c>). It signs session cookies.
    /// Required outside Development; at least <see cref="BatonOptionsValidator.MinimumSecretLength"/> characters.
    /// </summary>
    public string? Secret { get; set; }

    /// <summary>Session identity and pinning (<c>Baton:Sessions</c>).</summary>
    public BatonSessionOptions Sessions { get; set; } = new();
}

/// <summary>Session identity and pinning settings (<c>Baton:Sessions</c>).</summary>
public sealed class BatonSessionOptions
{
    /// <summary>A session unused this long is forgotten; its cookie then gets a fresh session. Default 20 minutes.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(20);

    /// <summary>
    /// The most sessions the gateway tracks at once. A new session beyond it is refused with 503 and
    /// <c>Retry-After</c>; existing sessions keep working. Default 1,000,000.
    /// </summary>
    public int MaxSessions { get; set; } = 1_000_000;

    /// <summary>How often expired sessions are swept from the pin table. Default 1 minute.</summary>
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromMinutes(1);
}
