using Microsoft.Extensions.Options;

namespace Baton.DemoBackend;

/// <summary>Where the demo keeps sessions.</summary>
public enum SessionStoreKind
{
    /// <summary>In this process's memory through the Baton backend library: checkpointed by the gateway.</summary>
    Baton,

    /// <summary>ASP.NET Core's own in-memory session: plain sticky sessions, lost with the process.</summary>
    Memory,

    /// <summary>ASP.NET Core distributed session on Redis: every request reads and writes the store.</summary>
    Redis,
}

/// <summary>The demo backend's settings (<c>Demo</c> section).</summary>
public sealed class DemoOptions
{
    /// <summary>The name every JSON answer carries as <c>"instance"</c>.</summary>
    public string InstanceId { get; set; } = "demo";

    public SessionStoreKind SessionStore { get; set; } = SessionStoreKind.Baton;

    /// <summary>StackExchange.Redis configuration, required when <see cref="SessionStore"/> is Redis.</summary>
    public string? Redis { get; set; }

    /// <summary>Idle timeout of a session. Default 20 minutes.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(20);

    /// <summary>The largest blob <c>POST /blob</c> stores. Default 8 MiB.</summary>
    public int MaxBlobBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>The most distinct SKUs a cart holds. Default 100.</summary>
    public int MaxCartItems { get; set; } = 100;
}

internal sealed class DemoOptionsValidator : IValidateOptions<DemoOptions>
{
    public ValidateOptionsResult Validate(string? name, DemoOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(options.InstanceId))
        {
            errors.Add("Demo:InstanceId must not be empty.");
        }

        if (options.SessionStore == SessionStoreKind.Redis && string.IsNullOrWhiteSpace(options.Redis))
        {
            errors.Add("Demo:Redis is required when Demo:SessionStore is Redis (for example 127.0.0.1:6379).");
        }

        if (options.IdleTimeout <= TimeSpan.Zero)
        {
            errors.Add($"Demo:IdleTimeout must be positive (it is {options.IdleTimeout}).");
        }

        if (options.MaxBlobBytes is < 0 or > 256 * 1024 * 1024)
        {
            errors.Add($"Demo:MaxBlobBytes must be between 0 and 268435456 (it is {options.MaxBlobBytes}).");
        }

        if (options.MaxCartItems < 1)
        {
            errors.Add($"Demo:MaxCartItems must be at least 1 (it is {options.MaxCartItems}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
