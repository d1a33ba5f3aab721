using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using StackExchange.Redis;

namespace Baton.LoadTest;

/// <summary>The <c>recovery</c> command's options.</summary>
internal sealed record RecoverySettings
{
    public int Sessions { get; init; } = 10_000;

    public string Out { get; init; } = "recovery-report";

    public TimeSpan OutageRun { get; init; } = TimeSpan.FromSeconds(30);

    public double Rate { get; init; } = 200;

    public int Users { get; init; } = 100;

    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(15);

    public const string Usage = """
        Usage: dotnet run -c Release --project src/LoadTest -- recovery [options]

          --sessions N            sessions in the store before Redis and the gateway are killed (default 10000)
          --out DIR               where recovery.md and recovery.json go (default recovery-report)
          --outage-seconds S      length of the Redis-outage run; Redis is dead for its middle third (default 30)
          --rate N                requests per second offered during the outage run (default 200)
          --users N               virtual users in the outage run (default 100)
          --warmup-seconds S      unmeasured load before the outage run (default 15)
        """;

    public static RecoverySettings Parse(IReadOnlyList<string> args)
    {
        var settings = new RecoverySettings();
        for (var i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new UsageException($"{args[i]} needs a value.");
            settings = args[i] switch
            {
                "--sessions" => settings with { Sessions = int.TryParse(Value(), CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 1_000_000 ? n : throw new UsageException("--sessions must be between 1 and 1000000.") },
                "--out" => settings with { Out = Value() },
                "--outage-seconds" => settings with { OutageRun = double.TryParse(Value(), CultureInfo.InvariantCulture, out var s) && s is >= 3 and <= 3600 ? TimeSpan.FromSeconds(s) : throw new UsageException("--outage-seconds must be between 3 and 3600.") },
                "--rate" => settings with { Rate = double.TryParse(Value(), CultureInfo.InvariantCulture, out var r) && r is > 0 and <= 100_000 ? r : throw new UsageException("--rate must be above 0 and at most 100000.") },
                "--users" => settings with { Users = int.TryParse(Value(), CultureInfo.InvariantCulture, out var u) && u is >= 1 and <= 10_000 ? u : throw new UsageException("--users must be between 1 and 10000.") },
                "--warmup-seconds" => settings with { Warmup = double.TryParse(Value(), CultureInfo.InvariantCulture, out var w) && w is >= 0 and <= 3600 ? TimeSpan.FromSeconds(w) : throw new UsageException("--warmup-seconds must be between 0 and 3600.") },
                _ => throw new UsageException($"Unknown option '{args[i]}'."),
            };
        }

        return settings;
    }
}

/// <summary>
/// Measures how Baton's store recovers, on the sticky-checkpoint stack: request p99 during a Redis outage
/// against before it (same run); the time to refill an empty Redis with N sessions from the journal; the
/// time from starting a killed gateway to ready with N sessions in its journal, and whether sessions carry
/// on with their state and their cookies afterwards.
/// </summary>
internal static class Recovery
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static async Task RunAsync(RecoverySettings settings, TextWriter console, CancellationToken cancellationToken)
    {
        var outFolder = Directory.CreateDirectory(settings.Out).FullName;
        var profile = ModeProfile.Load("sticky-checkpoint");
        await using var stack = await Stack.StartAsync(profile, BackendKind.Dotnet, Path.Combine(outFolder, "run"), cancellationToken);
        var gateway = stack.Gateway!;

        // 1. Request latency before and during a Redis outage, one run.
        await console.WriteLineAsync($"Redis outage run: {settings.Users} users at {settings.Rate:0}/s for {settings.OutageRun.TotalSeconds:0} s");
        var schedule = FaultSchedule.RedisOutage(settings.OutageRun);
        var users = Enumerable.Range(0, settings.Users).Select(i => new VirtualUser(i, stack.Target, 1024, TimeSpan.FromSeconds(30), i)).ToList();
        var recorder = new Recorder(schedule.PhaseNames);
        try
        {
            await LoadRunner.SetUpAsync(users, cancellationToken);

            // Warm code and connection pools first, so that "before" is not the JIT's first seconds.
            await LoadRunner.RunClosedAsync(users.Take(32).ToList(), 0.5, settings.Warmup, new Recorder(["warm-up"]), "warm-up", 1, cancellationToken);
            await LoadRunner.RunOpenAsync(users, settings.Rate, 0.5, schedule, recorder, fault => fault.Action == FaultAction.KillRedis
                ? Task.Run(stack.Redis.Kill, cancellationToken)
                : stack.Redis.StartAsync(TimeSpan.FromSeconds(30), cancellationToken), 1, cancellationToken);
            foreach (var user in users)
            {
                await user.VerifyAsync(cancellationToken);
            }
        }
        finally
        {
            users.ForEach(u => u.Dispose());
        }

        var phases = recorder.Phases.ToDictionary(p => p.Name, p => p.Stats, StringComparer.Ordinal);
        var before = ModeResult.Ms(phases[FaultSchedule.Steady].Histogram, 99);
        var during = ModeResult.Ms(phases[FaultSchedule.RedisFault].Histogram, 99);
        var outageErrors = recorder.Phases.Sum(p => p.Stats.Errors);
        var outageLost = users.Count(u => u.EverLost || u.EverStale || u.EverMismatched);

        // 2. Fill the store with N sessions.
        await console.WriteLineAsync($"Creating {settings.Sessions} sessions");
        var cookies = await CreateSessionsAsync(stack.Target, settings.Sessions, cancellationToken);
        await using var redis = await ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{stack.Redis.Port},allowAdmin=true,abortConnect=false");
        var expected = settings.Sessions + settings.Users;
        await WaitAsync(async () => await SessionKeysAsync(redis, stack.Redis.Port) >= expected, TimeSpan.FromMinutes(5), "Redis should hold every session", cancellationToken);

        // 3. Redis killed and started empty: time until it holds every session again.
        await console.WriteLineAsync("Refill: kill -9 redis, start it empty");
        stack.Redis.Kill();
        await stack.Redis.StartAsync(TimeSpan.FromSeconds(30), cancellationToken);
        var refill = Stopwatch.StartNew();
        await WaitAsync(async () => await SessionKeysAsync(redis, stack.Redis.Port) >= expected, TimeSpan.FromMinutes(10), "Redis should be refilled", cancellationToken);
        var refillSeconds = refill.Elapsed.TotalSeconds;

        // 4. Gateway killed: time from starting it again to ready, and to the first old session served.
        await console.WriteLineAsync("Restart: kill -9 gateway, start it again");
        gateway.Kill();
        var restart = Stopwatch.StartNew();
        await gateway.StartAsync(TimeSpan.FromMinutes(5), cancellationToken);
        var readySeconds = restart.Elapsed.TotalSeconds;
        var carriedOn = await CarriesOnAsync(stack.Target, cookies[0], cancellationToken);
        var firstSessionSeconds = restart.Elapsed.TotalSeconds;
        var sample = cookies.Take(200).ToList();
        var sampleOk = 0;
        foreach (var cookie in sample)
        {
            sampleOk += await CarriesOnAsync(stack.Target, cookie, cancellationToken) ? 1 : 0;
        }

        var journalBytes = Directory.GetFiles(Path.Combine(outFolder, "run", "work", "gateway"), "journal.db*").Sum(f => new FileInfo(f).Length);
        var result = new Dictionary<string, object>
        {
            ["machine"] = Reports.Machine(),
            ["sessions"] = expected,
            ["outage_p99_before_ms"] = before,
            ["outage_p99_during_ms"] = during,
            ["outage_p99_ratio"] = before > 0 ? Math.Round(during / before, 2) : 0,
            ["outage_requests"] = recorder.Requests,
            ["outage_errors"] = outageErrors,
            ["outage_sessions_lost_or_stale"] = outageLost,
            ["refill_seconds"] = Math.Round(refillSeconds, 2),
            ["restart_to_ready_seconds"] = Math.Round(readySeconds, 2),
            ["restart_to_first_session_seconds"] = Math.Round(firstSessionSeconds, 2),
            ["first_session_carried_on"] = carriedOn,
            ["sample_sessions_carried_on"] = $"{sampleOk}/{sample.Count}",
            ["journal_bytes"] = journalBytes,
        };
        await File.WriteAllTextAsync(Path.Combine(outFolder, "recovery.json"), JsonSerializer.Serialize(result, Indented), cancellationToken);
        var text = new StringBuilder();
        text.AppendLine("| measure | value |").AppendLine("|---|---:|");
        foreach (var (key, value) in result)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"| {key} | {value} |");
        }

        text.AppendLine()
            .AppendLine("The outage run is an open model at a constant rate, half writes; p99 counts from each request's intended start.")
            .AppendLine("The refill time runs from the new Redis accepting connections to it holding every session, and includes the")
            .AppendLine("gateway noticing the new Redis (it checks every Baton:Store:RedisCheckInterval, 2 s by default).");
        await File.WriteAllTextAsync(Path.Combine(outFolder, "recovery.md"), text.ToString(), cancellationToken);
        await console.WriteLineAsync(text.ToString());
    }

    // One request per new session (no cookie sent): each creates a session and its first checkpoint.
    private static async Task<List<string>> CreateSessionsAsync(Uri target, int count, CancellationToken cancellationToken)
    {
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false, UseProxy = false, MaxConnectionsPerServer = 32 }) { BaseAddress = target };
        var cookies = new string[count];
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = cancellationToken }, async (i, ct) =>
        {
            using var response = await client.PostAsync(new Uri("/counter", UriKind.Relative), null, ct);
            response.EnsureSuccessStatusCode();
            cookies[i] = response.Headers.TryGetValues("Set-Cookie", out var values) ? values.First().Split(';')[0] : throw new InvalidOperationException("The gateway set no session cookie.");
        });
        return [.. cookies];
    }

    // The session behind a cookie issued before the restart: its counter goes from 1 to 2.
    private static async Task<bool> CarriesOnAsync(Uri target, string cookie, CancellationToken cancellationToken)
    {
        using var client = new HttpClient(new SocketsHttpHandler { UseCookies = false, UseProxy = false }) { BaseAddress = target };
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri("/counter", UriKind.Relative));
        request.Headers.Add("Cookie", cookie);
        using var response = await client.SendAsync(request, cancellationToken);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            return false;
        }

        using var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
        return answer.RootElement.GetProperty("count").GetInt32() == 1;
    }

    private static async Task<long> SessionKeysAsync(ConnectionMultiplexer redis, int port)
    {
        try
        {
            var server = redis.GetServer($"127.0.0.1:{port}");
            var size = await server.DatabaseSizeAsync();
            return size - (await redis.GetDatabase().KeyExistsAsync("baton:marker:{0}") ? 1 : 0);
        }
        catch (RedisException)
        {
            return 0;
        }
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"{what} within {timeout.TotalSeconds:0} s.");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken);
        }
    }
}
