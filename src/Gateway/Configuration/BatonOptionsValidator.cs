using Microsoft.Extensions.Options;

namespace Baton.Gateway.Configuration;

/// <summary>
/// Checks every Baton setting at startup and reports all problems at once, each naming its configuration key.
/// </summary>
internal sealed class BatonOptionsValidator(IHostEnvironment environment) : IValidateOptions<BatonOptions>, IPostConfigureOptions<BatonOptions>
{
    public const int MinimumSecretLength = 32;

    private static readonly TimeSpan MinimumIdleTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaximumIdleTimeout = TimeSpan.FromDays(30);
    private static readonly TimeSpan MinimumPurgeInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaximumPurgeInterval = TimeSpan.FromHours(1);

    public void PostConfigure(string? name, BatonOptions options)
    {
        if (string.IsNullOrEmpty(options.Secret) && environment.IsDevelopment())
        {
            options.Secret = BatonConstants.DevelopmentSecret;
        }
    }

    public ValidateOptionsResult Validate(string? name, BatonOptions options)
    {
        var errors = new List<string>();
        const string Section = BatonConstants.ConfigSection;

        if (string.IsNullOrEmpty(options.Secret))
        {
            errors.Add($"{Section}:Secret is required outside the Development environment: set it to at least {MinimumSecretLength} random characters (for example the environment variable Baton__Secret), the same value on the gateway and its backends.");
        }
        else if (options.Secret.Length < MinimumSecretLength)
        {
            errors.Add($"{Section}:Secret must be at least {MinimumSecretLength} characters long (it has {options.Secret.Length}).");
        }

        var sessions = options.Sessions;
        if (sessions.IdleTimeout < MinimumIdleTimeout || sessions.IdleTimeout > MaximumIdleTimeout)
        {
            errors.Add($"{Section}:Sessions:IdleTimeout must be between {MinimumIdleTimeout} and {MaximumIdleTimeout} (it is {sessions.IdleTimeout}).");
        }

        if (sessions.MaxSessions < 1)
        {
            errors.Add($"{Section}:Sessions:MaxSessions must be at least 1 (it is {sessions.MaxSessions}).");
        }

        if (sessions.PurgeInterval < MinimumPurgeInterval || sessions.PurgeInterval > MaximumPurgeInterval)
        {
            errors.Add($"{Section}:Sessions:PurgeInterval must be between {MinimumPurgeInterval} and {MaximumPurgeInterval} (it is {sessions.PurgeInterval}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
