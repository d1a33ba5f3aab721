namespace Baton.LoadTest;

/// <summary>A fault the schedule injects.</summary>
internal enum FaultAction
{
    KillBackend,
    StartBackend,
    KillRedis,
    StartRedis,
    KillGateway,
    StartGateway,
}

internal sealed record FaultEvent(TimeSpan At, FaultAction Action, string Description);

/// <summary>
/// The same fault schedule for every mode, as fractions of the run: steady until a quarter in; kill -9 of
/// the first backend (the first backend is the only one in direct mode); a new backend process on its port
/// at 45 %; kill -9 of Redis at 60 %; a new, empty Redis at 80 %. Each fault opens a phase, and the
/// restart after it opens that fault's recovery phase. A scaled-out mode has its own: a gateway's death.
/// </summary>
internal sealed class FaultSchedule
{
    public const string Steady = "steady";
    public const string BackendFault = "backend-fault";
    public const string BackendRecovery = "backend-recovery";
    public const string RedisFault = "redis-fault";
    public const string RedisRecovery = "redis-recovery";
    public const string GatewayFault = "gateway-fault";
    public const string GatewayRecovery = "gateway-recovery";

    private FaultSchedule(TimeSpan duration, IReadOnlyList<FaultEvent> events, IReadOnlyList<(string Name, TimeSpan Start)> phases)
        => (Duration, Events, Phases) = (duration, events, phases);

    public TimeSpan Duration { get; }

    public IReadOnlyList<FaultEvent> Events { get; }

    /// <summary>The phases in order, each from its start to the next one's.</summary>
    public IReadOnlyList<(string Name, TimeSpan Start)> Phases { get; }

    public IReadOnlyList<string> PhaseNames => [.. Phases.Select(p => p.Name)];

    public static FaultSchedule Standard(TimeSpan duration, bool faults)
    {
        if (!faults)
        {
            return new FaultSchedule(duration, [], [(Steady, TimeSpan.Zero)]);
        }

        TimeSpan At(double fraction) => TimeSpan.FromMilliseconds(Math.Round(duration.TotalMilliseconds * fraction));
        return new FaultSchedule(
            duration,
            [
                new(At(0.25), FaultAction.KillBackend, "kill -9 backend b1"),
                new(At(0.45), FaultAction.StartBackend, "start backend b1 again"),
                new(At(0.60), FaultAction.KillRedis, "kill -9 redis"),
                new(At(0.80), FaultAction.StartRedis, "start redis again (empty)"),
            ],
            [(Steady, TimeSpan.Zero), (BackendFault, At(0.25)), (BackendRecovery, At(0.45)), (RedisFault, At(0.60)), (RedisRecovery, At(0.80))]);
    }

    /// <summary>
    /// The schedule of several gateways behind a balancer: steady until a third in; kill -9 of gateway g1 (its clients'
    /// connections break, the balancer takes it out); a new g1 process on its port at 60 %, which the balancer takes in.
    /// </summary>
    public static FaultSchedule GatewayKill(TimeSpan duration, bool faults)
    {
        if (!faults)
        {
            return new FaultSchedule(duration, [], [(Steady, TimeSpan.Zero)]);
        }

        TimeSpan At(double fraction) => TimeSpan.FromMilliseconds(Math.Round(duration.TotalMilliseconds * fraction));
        return new FaultSchedule(
            duration,
            [new(At(1 / 3.0), FaultAction.KillGateway, "kill -9 gateway g1"), new(At(0.60), FaultAction.StartGateway, "start gateway g1 again")],
            [(Steady, TimeSpan.Zero), (GatewayFault, At(1 / 3.0)), (GatewayRecovery, At(0.60))]);
    }

    /// <summary>The schedule a mode runs: <see cref="GatewayKill"/> when it is scaled out, else <see cref="Standard"/>.</summary>
    public static FaultSchedule For(ModeProfile profile, TimeSpan duration, bool faults)
        => profile.ScaledOut ? GatewayKill(duration, faults) : Standard(duration, faults);

    /// <summary>Only a Redis outage: kill -9 a third of the way in, a new empty Redis two thirds in.</summary>
    public static FaultSchedule RedisOutage(TimeSpan duration)
    {
        TimeSpan At(double fraction) => TimeSpan.FromMilliseconds(Math.Round(duration.TotalMilliseconds * fraction));
        return new FaultSchedule(
            duration,
            [new(At(1 / 3.0), FaultAction.KillRedis, "kill -9 redis"), new(At(2 / 3.0), FaultAction.StartRedis, "start redis again (empty)")],
            [(Steady, TimeSpan.Zero), (RedisFault, At(1 / 3.0)), (RedisRecovery, At(2 / 3.0))]);
    }

    public string PhaseAt(TimeSpan offset)
    {
        var name = Phases[0].Name;
        foreach (var (phase, start) in Phases)
        {
            if (offset >= start)
            {
                name = phase;
            }
        }

        return name;
    }
}
