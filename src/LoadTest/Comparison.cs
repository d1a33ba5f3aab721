using System.Diagnostics;

namespace Baton.LoadTest;

/// <summary>
/// The <c>compare</c> command: for each mode, start its stack, probe its capacity on a read-mostly and a
/// write-only mix, run the measured open-model workload through the fault schedule, read every session
/// back, stop everything; then write the reports.
/// </summary>
internal static class Comparison
{
    private const double ReadMostlyWrites = 0.1;

    public static async Task<IReadOnlyList<ModeResult>> RunAsync(CompareSettings settings, TextWriter console, CancellationToken cancellationToken)
    {
        var outFolder = Directory.CreateDirectory(settings.Out).FullName;
        var results = new List<ModeResult>();
        var schedules = new List<FaultSchedule>();
        foreach (var mode in settings.Modes)
        {
            await console.WriteLineAsync($"== {mode}");
            var profile = settings.Target is { } running
                ? new ModeProfile("target", $"An already running stack at {running}", true, 0, "?", false, string.Empty)
                : ModeProfile.Load(mode);
            schedules.Add(FaultSchedule.For(profile, settings.Duration, settings.Faults));
            results.Add(await RunModeAsync(settings, profile, schedules[^1], outFolder, console, cancellationToken));
            var last = results[^1];
            await console.WriteLineAsync(
                $"   {mode}: {last.Requests} requests, {last.Rps:0} ok/s, p50 {last.P50Ms} ms, p99 {last.P99Ms} ms, 5xx {last.Errors5xx} (gateway {last.GatewayErrors5xx}), sessions lost {last.SessionsLost}, stale {last.SessionsStale}");
        }

        Reports.Write(outFolder, settings, schedules, results);
        await console.WriteLineAsync($"Report: {Path.Combine(outFolder, "report.html")}");
        return results;
    }

    private static async Task<ModeResult> RunModeAsync(CompareSettings settings, ModeProfile profile, FaultSchedule schedule, string outFolder, TextWriter console, CancellationToken cancellationToken)
    {
        var mode = profile.Name;
        Stack? stack = null;
        Uri target;
        if (settings.Target is { } running)
        {
            target = running;
        }
        else
        {
            stack = await Stack.StartAsync(profile, settings.Backends, Path.Combine(outFolder, "runs", mode), cancellationToken);
            target = stack.Target;
        }

        try
        {
            using var progress = new ProgressDisplay(console, mode);
            var capacityUsers = Users(target, settings, settings.CapacityUsers, settings.Seed + 1_000_000);
            var users = Users(target, settings, settings.Users, settings.Seed);
            try
            {
                progress.Stage("set-up", null, TimeSpan.Zero);
                await LoadRunner.SetUpAsync([.. capacityUsers, .. users], cancellationToken);

                progress.Stage("warm-up", null, settings.Warmup);
                await LoadRunner.RunClosedAsync(capacityUsers, 0.5, settings.Warmup, new Recorder(["warm-up"]), "warm-up", settings.Seed, cancellationToken);

                var readMostly = new Recorder(["capacity"]);
                progress.Stage("capacity read-mostly", readMostly, settings.CapacityDuration);
                await LoadRunner.RunClosedAsync(capacityUsers, ReadMostlyWrites, settings.CapacityDuration, readMostly, "capacity", settings.Seed, cancellationToken);
                var writeOnly = new Recorder(["capacity"]);
                progress.Stage("capacity write-only", writeOnly, settings.CapacityDuration);
                await LoadRunner.RunClosedAsync(capacityUsers, 1.0, settings.CapacityDuration, writeOnly, "capacity", settings.Seed, cancellationToken);

                var recorder = new Recorder(schedule.PhaseNames);
                var cpuBefore = CpuByRole(stack);
                progress.Stage("run", recorder, schedule.Duration, schedule);
                await LoadRunner.RunOpenAsync(users, settings.Rate, settings.WriteFraction, schedule, recorder, fault => InjectAsync(stack, fault, console, cancellationToken), settings.Seed, cancellationToken);
                var cpuAfter = CpuByRole(stack);

                // Every session read back once more, after the last fault has healed.
                progress.Stage("verify", null, TimeSpan.Zero);
                await Parallel.ForEachAsync(users, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (user, ct) => await user.VerifyAsync(ct));
                progress.Done();
                return Summarize(profile, settings, schedule, recorder, readMostly, writeOnly, users, stack, cpuBefore, cpuAfter);
            }
            finally
            {
                foreach (var user in capacityUsers.Concat(users))
                {
                    user.Dispose();
                }
            }
        }
        finally
        {
            if (stack is not null)
            {
                await stack.DisposeAsync();
            }
        }
    }

    private static List<VirtualUser> Users(Uri target, CompareSettings settings, int count, int seed)
        => [.. Enumerable.Range(0, count).Select(i => new VirtualUser(i, target, settings.StateBytes, settings.RequestTimeout, seed + i))];

    private static async Task InjectAsync(Stack? stack, FaultEvent fault, TextWriter console, CancellationToken cancellationToken)
    {
        if (stack is null)
        {
            return;
        }

        await console.WriteLineAsync($"\n   fault at {fault.At.TotalSeconds:0.#} s: {fault.Description}");
        switch (fault.Action)
        {
            case FaultAction.KillBackend:
                stack.Backends[0].Kill();
                break;
            case FaultAction.StartBackend:
                await stack.Backends[0].StartAsync(TimeSpan.FromSeconds(60), cancellationToken);
                break;
            case FaultAction.KillRedis:
                stack.Redis.Kill();
                break;
            case FaultAction.StartRedis:
                await stack.Redis.StartAsync(TimeSpan.FromSeconds(60), cancellationToken);
                break;
            case FaultAction.KillGateway:
                stack.Gateways[0].Kill();
                break;
            case FaultAction.StartGateway:
                await stack.Gateways[0].StartAsync(TimeSpan.FromSeconds(60), cancellationToken);
                break;
            default:
                throw new UnreachableException();
        }
    }

    private static Dictionary<string, double> CpuByRole(Stack? stack)
        => stack is null ? [] : stack.Processes.GroupBy(p => p.Role).ToDictionary(g => g.Key, g => g.Sum(p => p.CpuSeconds), StringComparer.Ordinal);

    private static ModeResult Summarize(
        ModeProfile profile,
        CompareSettings settings,
        FaultSchedule schedule,
        Recorder recorder,
        Recorder readMostly,
        Recorder writeOnly,
        List<VirtualUser> users,
        Stack? stack,
        Dictionary<string, double> cpuBefore,
        Dictionary<string, double> cpuAfter)
    {
        var histogram = recorder.Overall;
        var phases = new List<PhaseResult>();
        var phaseHistograms = new Dictionary<string, HdrHistogram.LongHistogram>(StringComparer.Ordinal);
        for (var i = 0; i < schedule.Phases.Count; i++)
        {
            var (name, start) = schedule.Phases[i];
            var end = i + 1 < schedule.Phases.Count ? schedule.Phases[i + 1].Start : schedule.Duration;
            var stats = recorder.Phases.First(p => p.Name == name).Stats;
            var h = stats.Histogram;
            phaseHistograms[name] = h;
            phases.Add(new PhaseResult(
                name, start.TotalSeconds, stats.Requests, Math.Round(stats.Succeeded / Math.Max(0.001, (end - start).TotalSeconds), 1),
                ModeResult.Ms(h, 50), ModeResult.Ms(h, 90), ModeResult.Ms(h, 99), ModeResult.Ms(h, 99.9), ModeResult.Ms(h, 100),
                stats.Errors, stats.Errors5xx, stats.GatewayErrors5xx, stats.LostUsers.Count, stats.StaleUsers.Count, stats.BadSessions));
        }

        var faults = new List<FaultResult>();
        foreach (var fault in schedule.Events.Where(e => e.Action is FaultAction.KillBackend or FaultAction.KillRedis or FaultAction.KillGateway))
        {
            var (faultPhase, recoveryPhase) = fault.Action switch
            {
                FaultAction.KillBackend => (FaultSchedule.BackendFault, FaultSchedule.BackendRecovery),
                FaultAction.KillRedis => (FaultSchedule.RedisFault, FaultSchedule.RedisRecovery),
                _ => (FaultSchedule.GatewayFault, FaultSchedule.GatewayRecovery),
            };
            var affected = recorder.Phases.Where(p => p.Name == faultPhase || p.Name == recoveryPhase).ToList();
            var lastBad = affected.Max(p => p.Stats.LastBad);
            var result = new FaultResult(fault.Description, fault.At.TotalSeconds, lastBad > fault.At ? Math.Round((lastBad - fault.At).TotalSeconds, 2) : 0);
            if (fault.Action == FaultAction.KillGateway)
            {
                // What the clients of a dead gateway see: their requests in flight fail, then they are answered again.
                var answered = recorder.EveryUserAnsweredAfter(fault.At, users.Select(u => u.Id));
                result = result with { RequestsFailed = affected.Sum(p => p.Stats.Errors), EverySessionAnsweredSeconds = answered is { } after ? Math.Round(after.TotalSeconds, 2) : null };
            }

            faults.Add(result);
        }

        long LostIn(params string[] names) => recorder.Phases.Where(p => names.Contains(p.Name)).SelectMany(p => p.Stats.LostUsers).Distinct().Count();
        var requests = recorder.Requests;
        double? Cpu(string role) => stack is null || !cpuAfter.ContainsKey(role) ? null : Math.Round(cpuAfter.GetValueOrDefault(role) - cpuBefore.GetValueOrDefault(role), 2);
        double? Peak(string role) => stack?.Processes.Where(p => p.Role == role).Select(p => (double?)Math.Round(p.PeakMemoryBytes / (1024.0 * 1024.0), 1)).Max();
        var totalCpu = stack is null ? (double?)null : cpuAfter.Values.Sum() - cpuBefore.Values.Sum();
        return new ModeResult
        {
            Name = profile.Name,
            Description = profile.Description,
            Requests = requests,
            Rps = Math.Round(recorder.Succeeded / schedule.Duration.TotalSeconds, 1),
            P50Ms = ModeResult.Ms(histogram, 50),
            P90Ms = ModeResult.Ms(histogram, 90),
            P99Ms = ModeResult.Ms(histogram, 99),
            P999Ms = ModeResult.Ms(histogram, 99.9),
            MaxMs = ModeResult.Ms(histogram, 100),
            Errors = phases.Sum(p => p.Errors),
            Errors5xx = phases.Sum(p => p.Errors5xx),
            GatewayErrors5xx = phases.Sum(p => p.GatewayErrors5xx),
            ErrorsByOrigin = new SortedDictionary<string, long>(recorder.ErrorsByOrigin.ToDictionary(), StringComparer.Ordinal),
            SessionsLost = users.Count(u => u.EverLost),
            SessionsStale = users.Count(u => u.EverStale),
            SessionsMismatched = users.Count(u => u.EverMismatched),
            SessionsLostUnderBackendKill = LostIn(FaultSchedule.BackendFault, FaultSchedule.BackendRecovery),
            SessionsLostUnderRedisKill = LostIn(FaultSchedule.RedisFault, FaultSchedule.RedisRecovery),
            SessionsLostUnderGatewayKill = profile.ScaledOut ? LostIn(FaultSchedule.GatewayFault, FaultSchedule.GatewayRecovery) : null,
            Capacity = new Capacity(
                Math.Round(readMostly.Succeeded / Math.Max(0.001, settings.CapacityDuration.TotalSeconds), 1),
                ModeResult.Ms(readMostly.Overall, 99),
                Math.Round(writeOnly.Succeeded / Math.Max(0.001, settings.CapacityDuration.TotalSeconds), 1),
                ModeResult.Ms(writeOnly.Overall, 99),
                readMostly.Requests - readMostly.Succeeded + writeOnly.Requests - writeOnly.Succeeded),
            Phases = phases,
            Faults = faults,
            Resources = new Resources(
                totalCpu is { } cpu && requests > 0 ? Math.Round(cpu * 1000 / requests, 3) : null,
                Cpu("gateway"), Cpu("backend"), Cpu("redis"), Peak("gateway"), Peak("backend"), Peak("redis")),
            Timeline = recorder.Timeline(),
            Histogram = histogram,
            PhaseHistograms = phaseHistograms,
        };
    }
}
