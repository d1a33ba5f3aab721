using System.Diagnostics;
using System.Threading.Channels;

namespace Baton.LoadTest;

/// <summary>
/// Drives virtual users. The measured run is an open model: requests are due at a constant rate whatever
/// the server does, each goes to a user that is not busy, and its latency counts from when it was due, so
/// a stall is paid for by every request it delays (no coordinated omission). The capacity probe is a
/// closed model: every user sends its next request as soon as the last one is answered.
/// </summary>
internal static class LoadRunner
{
    /// <summary>Every user's first request (storing its state blob), not measured.</summary>
    public static Task SetUpAsync(IReadOnlyList<VirtualUser> users, CancellationToken cancellationToken)
        => Parallel.ForEachAsync(users, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = cancellationToken }, async (user, ct) => await user.SetUpAsync(ct));

    /// <summary>All users as fast as the server answers, for <paramref name="duration"/>.</summary>
    public static async Task RunClosedAsync(IReadOnlyList<VirtualUser> users, double writeFraction, TimeSpan duration, Recorder recorder, string phase, int seed, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        await Task.WhenAll(users.Select(async user =>
        {
            var random = new Random(seed + user.Id);
            while (!cancellationToken.IsCancellationRequested)
            {
                var begin = Stopwatch.GetElapsedTime(started);
                if (begin >= duration)
                {
                    return;
                }

                var outcome = await user.StepAsync(random.NextDouble() < writeFraction, cancellationToken);
                recorder.Record(phase, user.Id, begin, Stopwatch.GetElapsedTime(started) - begin, outcome);
            }
        }));
    }

    /// <summary>
    /// Requests due at <paramref name="rate"/> per second for the schedule's duration; the schedule's faults
    /// are applied (through <paramref name="inject"/>) at their times.
    /// </summary>
    public static async Task RunOpenAsync(
        IReadOnlyList<VirtualUser> users,
        double rate,
        double writeFraction,
        FaultSchedule schedule,
        Recorder recorder,
        Func<FaultEvent, Task> inject,
        int seed,
        CancellationToken cancellationToken)
    {
        var idle = Channel.CreateUnbounded<VirtualUser>();
        foreach (var user in users)
        {
            idle.Writer.TryWrite(user);
        }

        var random = new Random(seed);
        var started = Stopwatch.GetTimestamp();
        var faults = RunFaultsAsync(schedule, started, inject, cancellationToken);
        var inFlight = new List<Task>();
        for (long i = 0; ; i++)
        {
            var due = TimeSpan.FromSeconds(i / rate);
            if (due >= schedule.Duration || cancellationToken.IsCancellationRequested)
            {
                break;
            }

            await UntilAsync(started, due, cancellationToken);
            var user = await idle.Reader.ReadAsync(cancellationToken);
            var write = random.NextDouble() < writeFraction;
            inFlight.Add(Task.Run(async () =>
            {
                try
                {
                    var outcome = await user.StepAsync(write, cancellationToken);
                    recorder.Record(schedule.PhaseAt(due), user.Id, due, Stopwatch.GetElapsedTime(started) - due, outcome);
                }
                finally
                {
                    idle.Writer.TryWrite(user);
                }
            }, CancellationToken.None));

            if (inFlight.Count > 4096)
            {
                inFlight.RemoveAll(t => t.IsCompleted);
            }
        }

        await Task.WhenAll(inFlight);
        await faults;
    }

    private static async Task RunFaultsAsync(FaultSchedule schedule, long started, Func<FaultEvent, Task> inject, CancellationToken cancellationToken)
    {
        foreach (var fault in schedule.Events)
        {
            await UntilAsync(started, fault.At, cancellationToken);
            await inject(fault);
        }
    }

    // Timers round to whole milliseconds and may fire a little early: never start anything before it is due.
    private static async Task UntilAsync(long started, TimeSpan due, CancellationToken cancellationToken)
    {
        TimeSpan wait;
        while ((wait = due - Stopwatch.GetElapsedTime(started)) > TimeSpan.Zero)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(wait.TotalMilliseconds)), cancellationToken);
        }
    }
}
