using System.Globalization;

namespace Baton.Conformance;

/// <summary>An app route the kit calls: a method and a path (with query), such as <c>POST /counter</c>.</summary>
/// <param name="Method">The HTTP method, upper case.</param>
/// <param name="Path">The path and query, starting with <c>/</c>.</param>
public sealed record AppRoute(string Method, string Path)
{
    /// <summary>Reads <c>"METHOD /path"</c>, or <c>"/path"</c> with <paramref name="defaultMethod"/>; null when it is neither.</summary>
    public static AppRoute? TryParse(string? text, string defaultMethod)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var parts = text.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var (method, path) = parts.Length switch
        {
            1 => (defaultMethod, parts[0]),
            2 => (parts[0].ToUpperInvariant(), parts[1]),
            _ => (string.Empty, string.Empty),
        };
        if (method.Length == 0 || !method.All(char.IsAsciiLetter) || !path.StartsWith('/') || path.StartsWith("//", StringComparison.Ordinal))
        {
            return null;
        }

        return new AppRoute(method, path);
    }

    public override string ToString() => Method + " " + Path;
}

/// <summary>
/// What the kit needs to know about the backend under test: where it listens, the shared secret, and the app
/// routes it drives (by default those of the demo app: a counter, a blob, a health probe).
/// </summary>
public sealed class ConformanceOptions
{
    /// <summary>The placeholder in <see cref="GrowRoute"/> replaced by the number of bytes to store.</summary>
    public const string BytesPlaceholder = "{bytes}";

    /// <summary>The backend's base address (the kit talks to it directly, as the gateway does).</summary>
    public required Uri Backend { get; init; }

    /// <summary>The shared secret (<c>Baton:Secret</c>), at least 32 characters.</summary>
    public required string Secret { get; init; }

    /// <summary>A route whose request changes the session (each call a new change). Its answers must be the same for the same state.</summary>
    public AppRoute ChangeRoute { get; init; } = new("POST", "/counter");

    /// <summary>A route that only reads the session. Its answers must be the same for the same state.</summary>
    public AppRoute ReadRoute { get; init; } = new("GET", "/counter");

    /// <summary>A route that grows the state by about <see cref="BytesPlaceholder"/> bytes (for the size-limit rules).</summary>
    public AppRoute GrowRoute { get; init; } = new("POST", "/blob?bytes=" + BytesPlaceholder);

    /// <summary>A route served without a grant (a health probe).</summary>
    public AppRoute HealthRoute { get; init; } = new("GET", "/health");

    /// <summary>A route whose request rotates the session (login), or null to skip the rotate rule.</summary>
    public AppRoute? LoginRoute { get; init; }

    /// <summary>A route whose request ends the session (logout), or null to skip the end rule.</summary>
    public AppRoute? LogoutRoute { get; init; }

    /// <summary>The JSON body sent to <see cref="LoginRoute"/>.</summary>
    public string LoginBody { get; init; } = """{"user":"conformance"}""";

    /// <summary>The backend's own state limit, when known: enables the rule that a change past it is refused.</summary>
    public int? MaxStateBytes { get; init; }

    /// <summary>How long one request may take before it counts as unanswered.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long the whole run may take; rules not finished by then fail.</summary>
    public TimeSpan OverallTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How far outside the backend's clock the kit puts a timestamp that must be refused (far beyond any sane skew).</summary>
    public TimeSpan OutOfSkew { get; init; } = TimeSpan.FromDays(1);

    /// <summary>The grow route for <paramref name="bytes"/> bytes.</summary>
    public AppRoute GrowBy(int bytes) => GrowRoute with { Path = GrowRoute.Path.Replace(BytesPlaceholder, bytes.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal) };

    /// <summary>Every problem with these options, each naming what is wrong; empty when they can be used.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Backend.IsAbsoluteUri || Backend.Scheme is not ("http" or "https"))
        {
            errors.Add($"--backend must be an absolute http:// or https:// address (it is '{Backend}').");
        }

        if (Secret.Length < Protocol.ProtocolConstants.MinimumSecretLength)
        {
            errors.Add($"--secret must be at least {Protocol.ProtocolConstants.MinimumSecretLength} characters, the backend's Baton:Secret (it has {Secret.Length}).");
        }

        if (!GrowRoute.Path.Contains(BytesPlaceholder, StringComparison.Ordinal))
        {
            errors.Add($"--grow-path must contain {BytesPlaceholder}, where the kit puts the number of bytes to store (it is '{GrowRoute}').");
        }

        if (MaxStateBytes is < 1)
        {
            errors.Add($"--max-state-bytes must be at least 1 (it is {MaxStateBytes}).");
        }

        if (RequestTimeout <= TimeSpan.Zero || OverallTimeout <= TimeSpan.Zero)
        {
            errors.Add("--request-timeout and --timeout must be above 0.");
        }

        return errors;
    }
}
