using System.Globalization;

namespace Baton.Conformance;

/// <summary>The kit's command line: <c>--backend URL --secret SECRET</c> and the app's routes.</summary>
public static class ConformanceArguments
{
    public const string Usage = """
        Baton protocol conformance kit: checks that a backend implements docs/protocol.md.

        usage: Baton.Conformance --backend URL --secret SECRET [options]

          --backend URL            the backend's address, e.g. http://127.0.0.1:5001 (required)
          --secret SECRET          its Baton:Secret, at least 32 characters (required)
          --change-path ROUTE      a route whose request changes the session   (default: POST /counter)
          --read-path ROUTE        a route that only reads the session         (default: GET /counter)
          --grow-path ROUTE        a route growing the state by {bytes} bytes  (default: POST /blob?bytes={bytes})
          --health-path ROUTE      a route served without a grant              (default: GET /health)
          --login-path ROUTE       a route that rotates the session (login); checks action.rotate
          --logout-path ROUTE      a route that ends the session (logout); checks action.end
          --login-body JSON        the body sent to the login route            (default: {"user":"conformance"})
          --max-state-bytes N      the backend's own state limit; checks size.backend-max
          --request-timeout SECS   the longest one request may take            (default: 10)
          --timeout SECS           the longest the whole run may take          (default: 120)

        A ROUTE is "METHOD /path" or "/path" (POST for changes, login and logout; GET otherwise).
        Exit code: 0 every rule passed, 1 a rule failed, 2 bad arguments or an unreachable backend.
        """;

    private static readonly string[] Known =
    [
        "backend", "secret", "change-path", "read-path", "grow-path", "health-path", "login-path", "logout-path",
        "login-body", "max-state-bytes", "request-timeout", "timeout",
    ];

    /// <summary>Reads the arguments; null with every problem in <paramref name="errors"/> when they cannot be used.</summary>
    public static ConformanceOptions? Parse(IReadOnlyList<string> args, out IReadOnlyList<string> errors)
    {
        ArgumentNullException.ThrowIfNull(args);
        var problems = new List<string>();
        errors = problems;
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                problems.Add($"unexpected argument '{arg}': options start with --");
                continue;
            }

            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            var name = eq > 0 ? arg[2..eq] : arg[2..];
            string? value = eq > 0 ? arg[(eq + 1)..] : i + 1 < args.Count ? args[++i] : null;
            if (!Known.Contains(name))
            {
                problems.Add($"unknown option --{name}");
            }
            else if (value is null)
            {
                problems.Add($"--{name} needs a value");
            }
            else if (!values.TryAdd(name, value))
            {
                problems.Add($"--{name} is given twice");
            }
        }

        Uri? backend = null;
        if (!values.TryGetValue("backend", out var address))
        {
            problems.Add("--backend is required: the backend's address, e.g. --backend http://127.0.0.1:5001");
        }
        else if (!Uri.TryCreate(address, UriKind.Absolute, out backend) || backend.Scheme is not ("http" or "https"))
        {
            problems.Add($"--backend must be an absolute http:// or https:// address (it is '{address}')");
        }

        if (!values.TryGetValue("secret", out var secret))
        {
            problems.Add("--secret is required: the backend's Baton:Secret");
        }
        else if (secret.Length < Protocol.ProtocolConstants.MinimumSecretLength)
        {
            problems.Add($"--secret must be at least {Protocol.ProtocolConstants.MinimumSecretLength} characters, the backend's Baton:Secret (it has {secret.Length})");
        }

        var change = Route(values, "change-path", "POST", problems);
        var read = Route(values, "read-path", "GET", problems);
        var grow = Route(values, "grow-path", "POST", problems);
        var health = Route(values, "health-path", "GET", problems);
        var login = Route(values, "login-path", "POST", problems);
        var logout = Route(values, "logout-path", "POST", problems);
        var maxState = Number(values, "max-state-bytes", problems);
        var requestTimeout = Number(values, "request-timeout", problems);
        var timeout = Number(values, "timeout", problems);
        if (problems.Count > 0 || backend is null || secret is null)
        {
            return null;
        }

        var defaults = new ConformanceOptions { Backend = backend, Secret = secret };
        var options = new ConformanceOptions
        {
            Backend = backend,
            Secret = secret,
            ChangeRoute = change ?? defaults.ChangeRoute,
            ReadRoute = read ?? defaults.ReadRoute,
            GrowRoute = grow ?? defaults.GrowRoute,
            HealthRoute = health ?? defaults.HealthRoute,
            LoginRoute = login,
            LogoutRoute = logout,
            LoginBody = values.GetValueOrDefault("login-body", defaults.LoginBody),
            MaxStateBytes = maxState,
            RequestTimeout = requestTimeout is { } r ? TimeSpan.FromSeconds(r) : defaults.RequestTimeout,
            OverallTimeout = timeout is { } t ? TimeSpan.FromSeconds(t) : defaults.OverallTimeout,
        };
        problems.AddRange(options.Validate());
        return problems.Count == 0 ? options : null;
    }

    private static AppRoute? Route(Dictionary<string, string> values, string name, string defaultMethod, List<string> problems)
    {
        if (!values.TryGetValue(name, out var text))
        {
            return null;
        }

        var route = AppRoute.TryParse(text, defaultMethod);
        if (route is null)
        {
            problems.Add($"--{name} must be \"METHOD /path\" or \"/path\" (it is '{text}')");
        }

        return route;
    }

    private static int? Number(Dictionary<string, string> values, string name, List<string> problems)
    {
        if (!values.TryGetValue(name, out var text))
        {
            return null;
        }

        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < 1)
        {
            problems.Add($"--{name} must be a whole number of at least 1 (it is '{text}')");
            return null;
        }

        return value;
    }
}
