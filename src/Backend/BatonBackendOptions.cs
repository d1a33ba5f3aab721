using Baton.Protocol;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Baton.Backend;

/// <summary>
/// The backend library's settings, bound from the <c>Baton</c> section: <c>Baton:Secret</c> (the same key
/// and value as the gateway's) and <c>Baton:Backend:*</c>.
/// </summary>
public sealed class BatonBackendOptions
{
    /// <summary>The secret shared with the gateway (<c>Baton:Secret</c>). Required outside Development.</summary>
    public string? Secret { get; set; }

    /// <summary>The library's own limits (<c>Baton:Backend</c>).</summary>
    public BatonBackendLimits Backend { get; set; } = new();
}

/// <summary>Limits of the backend library (<c>Baton:Backend</c>).</summary>
public sealed class BatonBackendLimits
{
    /// <summary>
    /// The largest session state this backend keeps, serialized. A change beyond it (or beyond the
    /// gateway's own cap, whichever is smaller) is rolled back and answered 413. Default 1 MiB.
    /// </summary>
    public int MaxStateBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// How much of a response is held back so the session's checkpoint can lead it. A larger response
    /// starts streaming; changes after that ride with the session's next response. Default 1 MiB.
    /// </summary>
    public int MaxBufferedResponseBytes { get; set; } = 1024 * 1024;

    /// <summary>How far a grant's or restore's timestamp may be from this host's clock. Default 60 s.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long a request waits for another request of the same session to finish, then 503. Keep it well under
    /// the gateway's attempt timeout (<c>HttpRequest:ActivityTimeout</c>, 5 s shipped): a request that waits
    /// longer looks to the gateway like a backend that stopped answering. Default 2 s.
    /// </summary>
    public TimeSpan SessionLockTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Most sessions held in memory; a new one beyond it is answered 503. Default 1,000,000.</summary>
    public int MaxSessions { get; set; } = 1_000_000;

    /// <summary>
    /// Most bytes of session state (serialized) held in memory together. A change that would grow past it is
    /// rolled back and answered 503 with <c>Retry-After</c>, and a restore that would is refused (the gateway
    /// then restores elsewhere). It bounds what refused or abandoned changes can leave in memory. Default 2 GiB.
    /// </summary>
    public long MaxTotalStateBytes { get; set; } = 2L * 1024 * 1024 * 1024;

    /// <summary>Most restore nonces remembered to refuse replays; a restore beyond it is answered 503. Default 100,000.</summary>
    public int MaxRememberedRestores { get; set; } = 100_000;

    /// <summary>
    /// Most session ids remembered as rotated away from or ended here (each for the session's idle timeout), so that
    /// a request or a restore of such an id is refused (410) instead of bringing it back; past it the oldest are
    /// forgotten first. Default 100,000.
    /// </summary>
    public int MaxRetiredSessions { get; set; } = 100_000;

    /// <summary>
    /// Send a change as a delta (the keys set and removed since the gateway's stored version) where the gateway
    /// offers to take one and the delta is at most half the whole state. Default true.
    /// </summary>
    public bool SendDeltas { get; set; } = true;

    /// <summary>
    /// Most removed keys a session remembers for its deltas. Past it the oldest removal is forgotten, and a delta that
    /// would have to name it is sent as the whole state instead. Default 64.
    /// </summary>
    public int MaxRemovedKeysPerSession { get; set; } = 64;

    /// <summary>Idle timeout of sessions of requests that did not come through a gateway. Default 20 minutes.</summary>
    public TimeSpan LocalIdleTimeout { get; set; } = TimeSpan.FromMinutes(20);

    /// <summary>How often expired sessions are removed from memory. Default 1 minute.</summary>
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromMinutes(1);
}

internal sealed class BatonBackendOptionsValidator(IHostEnvironment environment, IOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions> server) : IValidateOptions<BatonBackendOptions>, IPostConfigureOptions<BatonBackendOptions>
{
    public void PostConfigure(string? name, BatonBackendOptions options)
    {
        if (string.IsNullOrEmpty(options.Secret) && environment.IsDevelopment())
        {
            options.Secret = ProtocolConstants.DevelopmentSecret;
        }
    }

    public ValidateOptionsResult Validate(string? name, BatonBackendOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrEmpty(options.Secret))
        {
            errors.Add($"Baton:Secret is required outside the Development environment: set it to the gateway's secret (at least {ProtocolConstants.MinimumSecretLength} characters), for example with the environment variable Baton__Secret.");
        }
        else if (options.Secret.Length < ProtocolConstants.MinimumSecretLength)
        {
            errors.Add($"Baton:Secret must be at least {ProtocolConstants.MinimumSecretLength} characters long (it has {options.Secret.Length}).");
        }
        else if (options.Secret == ProtocolConstants.DevelopmentSecret && !environment.IsDevelopment())
        {
            errors.Add($"Baton:Secret is the documented development secret, which anyone can read: outside the Development environment set the gateway's own secret (at least {ProtocolConstants.MinimumSecretLength} characters).");
        }

        var b = options.Backend;
        Check(b.MaxStateBytes is >= 1024 and <= 256 * 1024 * 1024, $"Baton:Backend:MaxStateBytes must be between 1024 and 268435456 (it is {b.MaxStateBytes}).");
        var bodyLimit = server.Value.Limits.MaxRequestBodySize;
        Check(bodyLimit is null || b.MaxStateBytes <= bodyLimit, $"Baton:Backend:MaxStateBytes ({b.MaxStateBytes}) is above the server's request body limit (Kestrel:Limits:MaxRequestBodySize, {bodyLimit}): a restore of a state that large would be refused. Lower the one or raise the other.");
        Check(b.MaxBufferedResponseBytes is >= 0 and <= 256 * 1024 * 1024, $"Baton:Backend:MaxBufferedResponseBytes must be between 0 and 268435456 (it is {b.MaxBufferedResponseBytes}).");
        Check(b.ClockSkew >= TimeSpan.FromSeconds(1) && b.ClockSkew <= TimeSpan.FromHours(1), $"Baton:Backend:ClockSkew must be between 00:00:01 and 01:00:00 (it is {b.ClockSkew}).");
        Check(b.SessionLockTimeout > TimeSpan.Zero && b.SessionLockTimeout <= TimeSpan.FromMinutes(10), $"Baton:Backend:SessionLockTimeout must be above 0 and at most 00:10:00 (it is {b.SessionLockTimeout}).");
        Check(b.MaxSessions >= 1, $"Baton:Backend:MaxSessions must be at least 1 (it is {b.MaxSessions}).");
        Check(b.MaxTotalStateBytes >= b.MaxStateBytes, $"Baton:Backend:MaxTotalStateBytes ({b.MaxTotalStateBytes}) must be at least Baton:Backend:MaxStateBytes ({b.MaxStateBytes}).");
        Check(b.MaxRememberedRestores >= 1, $"Baton:Backend:MaxRememberedRestores must be at least 1 (it is {b.MaxRememberedRestores}).");
        Check(b.MaxRetiredSessions >= 1, $"Baton:Backend:MaxRetiredSessions must be at least 1 (it is {b.MaxRetiredSessions}).");
        Check(b.MaxRemovedKeysPerSession is >= 0 and <= 100_000, $"Baton:Backend:MaxRemovedKeysPerSession must be between 0 and 100000 (it is {b.MaxRemovedKeysPerSession}).");
        Check(b.LocalIdleTimeout >= TimeSpan.FromSeconds(1), $"Baton:Backend:LocalIdleTimeout must be at least 00:00:01 (it is {b.LocalIdleTimeout}).");
        Check(b.PurgeInterval >= TimeSpan.FromMilliseconds(100) && b.PurgeInterval <= TimeSpan.FromHours(1), $"Baton:Backend:PurgeInterval must be between 00:00:00.1 and 01:00:00 (it is {b.PurgeInterval}).");
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);

        void Check(bool ok, string message)
        {
            if (!ok)
            {
                errors.Add(message);
            }
        }
    }
}
