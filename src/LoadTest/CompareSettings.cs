using System.Globalization;

namespace Baton.LoadTest;

/// <summary>The <c>compare</c> command's options, with the defaults of a quick and of a full run.</summary>
internal sealed record CompareSettings
{
    public bool Quick { get; init; }

    public string Out { get; init; } = "loadtest-report";

    public IReadOnlyList<string> Modes { get; init; } = ModeProfile.Names;

    /// <summary>Virtual users in the measured (open-model) run.</summary>
    public int Users { get; init; }

    /// <summary>Requests per second the measured run offers, whatever the server does.</summary>
    public double Rate { get; init; }

    /// <summary>The share of writes (adding an item) in the measured run; the rest are reads. 0.1 = read-mostly.</summary>
    public double WriteFraction { get; init; } = 0.1;

    /// <summary>The size of the blob every user keeps in its session.</summary>
    public int StateBytes { get; init; } = 1024;

    public TimeSpan Duration { get; init; }

    /// <summary>Unmeasured load before the capacity probes, so that they measure warm code (JIT, connection pools).</summary>
    public TimeSpan Warmup { get; init; }

    /// <summary>How long each capacity probe (read-mostly, then write-only) runs.</summary>
    public TimeSpan CapacityDuration { get; init; }

    /// <summary>Concurrent users in the capacity probes.</summary>
    public int CapacityUsers { get; init; } = 32;

    public bool Faults { get; init; } = true;

    /// <summary>An already running stack to measure instead of starting one per mode (no faults then).</summary>
    public Uri? Target { get; init; }

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public int Seed { get; init; } = 1;

    /// <summary>The demo backends the stacks run: the ASP.NET Core one, or the Express one.</summary>
    public BackendKind Backends { get; init; } = BackendKind.Dotnet;

    public const string Usage = """
        Usage: dotnet run -c Release --project src/LoadTest -- compare [options]

          --quick                 a short run (about two minutes for the four modes); default is the full run (about ten)
          --out DIR               where report.html, report.md, results.json and the .hgrm files go (default loadtest-report)
          --modes LIST            comma-separated, from: sticky-checkpoint, sticky-only, shared-store, direct (default: these four),
                                  multi-gateway (two gateways behind HAProxy on a shared PostgreSQL journal, one killed -9)
          --users N               virtual users in the measured run (default 40 quick, 100 full)
          --rate N                requests per second offered in the measured run (default 120 quick, 200 full)
          --write-fraction F      share of writes in the measured run, 0 to 1 (default 0.1: read-mostly)
          --state-bytes N         session state blob per user (default 1024)
          --duration S            seconds of the measured run (default 20 quick, 90 full)
          --capacity-seconds S    seconds of each capacity probe (default 4 quick, 20 full)
          --warmup-seconds S      unmeasured load before the probes (default 2 quick, 10 full)
          --capacity-users N      concurrent users in the capacity probes (default 32)
          --no-faults             run without the fault schedule
          --target URL            measure an already running gateway (no processes started, no faults)
          --request-timeout S     per-request timeout (default 30)
          --seed N                random seed (default 1)
          --backends KIND         dotnet (the ASP.NET Core demo, default) or node (the Express demo in src/node, after
                                  npm ci there; it runs every mode but shared-store, which is left out by default)
        """;

    public static CompareSettings Parse(IReadOnlyList<string> args)
    {
        var quick = args.Contains("--quick");
        var settings = new CompareSettings
        {
            Quick = quick,
            Users = quick ? 40 : 100,
            Rate = quick ? 120 : 200,
            Duration = TimeSpan.FromSeconds(quick ? 20 : 90),
            CapacityDuration = TimeSpan.FromSeconds(quick ? 4 : 20),
            Warmup = TimeSpan.FromSeconds(quick ? 2 : 10),
        };

        for (var i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new UsageException($"{args[i]} needs a value.");
            settings = args[i] switch
            {
                "--quick" => settings,
                "--out" => settings with { Out = Value() },
                "--modes" => settings with { Modes = [.. Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)] },
                "--users" => settings with { Users = Int(args[i], Value()) },
                "--rate" => settings with { Rate = Double(args[i], Value()) },
                "--write-fraction" => settings with { WriteFraction = Double(args[i], Value()) },
                "--state-bytes" => settings with { StateBytes = Int(args[i], Value()) },
                "--duration" => settings with { Duration = TimeSpan.FromSeconds(Double(args[i], Value())) },
                "--capacity-seconds" => settings with { CapacityDuration = TimeSpan.FromSeconds(Double(args[i], Value())) },
                "--warmup-seconds" => settings with { Warmup = TimeSpan.FromSeconds(Double(args[i], Value())) },
                "--capacity-users" => settings with { CapacityUsers = Int(args[i], Value()) },
                "--no-faults" => settings with { Faults = false },
                "--target" => settings with { Target = Uri.TryCreate(Value(), UriKind.Absolute, out var uri) ? uri : throw new UsageException("--target must be an absolute URL such as http://127.0.0.1:8080/.") },
                "--request-timeout" => settings with { RequestTimeout = TimeSpan.FromSeconds(Double(args[i], Value())) },
                "--seed" => settings with { Seed = Int(args[i], Value()) },
                "--backends" => settings with { Backends = Value() switch { "dotnet" => BackendKind.Dotnet, "node" => BackendKind.Node, var other => throw new UsageException($"--backends takes dotnet or node, not '{other}'.") } },
                _ => throw new UsageException($"Unknown option '{args[i]}'."),
            };
        }

        if (settings.Target is not null)
        {
            settings = settings with { Modes = ["target"], Faults = false };
        }
        else if (!args.Contains("--modes"))
        {
            // The default modes this kind of backend can run (the Express demo has no shared store).
            settings = settings with { Modes = [.. settings.Modes.Where(m => DemoBackendCommand.Supports(settings.Backends, ModeProfile.Load(m).BackendSessionStore))] };
        }

        settings.Validate();
        return settings;
    }

    private void Validate()
    {
        var unknown = Modes.Where(m => m != "target" && !ModeProfile.Known.Contains(m)).ToList();
        Require(Modes.Count > 0 && unknown.Count == 0, $"--modes: unknown mode(s) {string.Join(", ", unknown)}; known: {string.Join(", ", ModeProfile.Known)}.");
        Require(Users is >= 1 and <= 10_000, "--users must be between 1 and 10000.");
        Require(CapacityUsers is >= 1 and <= 1_000, "--capacity-users must be between 1 and 1000.");
        Require(Rate is > 0 and <= 100_000, "--rate must be above 0 and at most 100000 requests per second.");
        Require(WriteFraction is >= 0 and <= 1, "--write-fraction must be between 0 and 1.");
        Require(StateBytes is >= 0 and <= 8 * 1024 * 1024, "--state-bytes must be between 0 and 8388608 (the demo backend's blob limit).");
        Require(Duration >= TimeSpan.FromSeconds(Faults ? 10 : 1) && Duration <= TimeSpan.FromHours(2), "--duration must be between 10 s (1 s without faults) and 2 h.");
        Require(CapacityDuration >= TimeSpan.Zero && CapacityDuration <= TimeSpan.FromHours(1), "--capacity-seconds must be between 0 and 3600.");
        Require(Warmup >= TimeSpan.Zero && Warmup <= TimeSpan.FromHours(1), "--warmup-seconds must be between 0 and 3600.");
        Require(RequestTimeout >= TimeSpan.FromSeconds(1) && RequestTimeout <= TimeSpan.FromMinutes(10), "--request-timeout must be between 1 and 600 seconds.");
        Require(!string.IsNullOrWhiteSpace(Out), "--out must name a folder.");
        var unsupported = Modes.Where(m => m != "target").Where(m => !DemoBackendCommand.Supports(Backends, ModeProfile.Load(m).BackendSessionStore)).ToList();
        Require(unsupported.Count == 0, $"--backends {Backends.ToString().ToLowerInvariant()} cannot run {string.Join(", ", unsupported)}: the Express demo keeps sessions in Baton's library or in express-session's MemoryStore, not in a shared store.");
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new UsageException(message);
        }
    }

    private static int Int(string option, string value)
        => int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) ? n : throw new UsageException($"{option} takes a whole number, not '{value}'.");

    private static double Double(string option, string value)
        => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var n) ? n : throw new UsageException($"{option} takes a number, not '{value}'.");
}
