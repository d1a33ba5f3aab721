using HdrHistogram;

namespace Baton.LoadTest;

/// <summary>
/// Latencies (microseconds, in HdrHistogram) and outcomes of one measured run, overall, per phase and per
/// second. Thread-safe.
/// </summary>
internal sealed class Recorder
{
    /// <summary>Latencies above this (two minutes) are recorded as this.</summary>
    private const long HighestMicros = 120_000_000;
    private readonly Lock _lock = new();
    private readonly IReadOnlyList<string> _phaseNames;
    private readonly LongHistogram _all = NewHistogram();
    private readonly Dictionary<string, PhaseStats> _phases = new(StringComparer.Ordinal);
    private readonly List<SecondStats> _seconds = [];
    private readonly Dictionary<string, long> _errors = new(StringComparer.Ordinal);
    private readonly Dictionary<int, List<TimeSpan>> _answered = [];

    public Recorder(IReadOnlyList<string> phaseNames)
    {
        _phaseNames = phaseNames;
        foreach (var name in phaseNames)
        {
            _phases[name] = new PhaseStats();
        }
    }

    public long Requests { get; private set; }

    public long Succeeded { get; private set; }

    /// <summary>Records one request of a user, by the time it was meant to start (from the run's start) and how long it took from then.</summary>
    public void Record(string phase, int user, TimeSpan intendedStart, TimeSpan latency, Outcome outcome)
    {
        var micros = Math.Clamp((long)latency.TotalMicroseconds, 1, HighestMicros);
        var second = (int)intendedStart.TotalSeconds;
        lock (_lock)
        {
            Requests++;
            _all.RecordValue(micros);
            var stats = _phases[phase];
            stats.Histogram.RecordValue(micros);
            stats.Requests++;
            while (_seconds.Count <= second)
            {
                _seconds.Add(new SecondStats());
            }

            var slot = _seconds[second];
            slot.Latencies.Add(micros);
            if (outcome.IsSuccess)
            {
                if (!_answered.TryGetValue(user, out var answered))
                {
                    _answered[user] = answered = [];
                }

                answered.Add(intendedStart + latency);
                Succeeded++;
                stats.Succeeded++;
                slot.Succeeded++;
                return;
            }

            if (outcome.Status is 0 or >= 300)
            {
                var key = outcome.Status == 0 ? $"{outcome.Origin}:no-answer" : $"{outcome.Origin}:{outcome.Status}";
                _errors[key] = _errors.GetValueOrDefault(key) + 1;
                stats.Errors++;
                slot.Errors++;
                if (outcome.Status >= 500)
                {
                    stats.Errors5xx++;
                }

                if (outcome.Status >= 500 && outcome.Origin == "gateway")
                {
                    stats.GatewayErrors5xx++;
                }
            }

            if (outcome.Verdict != Verdict.Ok)
            {
                stats.BadSessions++;
                slot.BadSessions++;
                if (outcome.Verdict == Verdict.Lost)
                {
                    stats.LostUsers.Add(user);
                }
                else if (outcome.Verdict == Verdict.Stale)
                {
                    stats.StaleUsers.Add(user);
                }
            }

            stats.LastBad = intendedStart > stats.LastBad ? intendedStart : stats.LastBad;
        }
    }

    /// <summary>
    /// How long after <paramref name="at"/> every one of <paramref name="users"/> had been answered again: the latest of
    /// their first successful answers since then (null when one of them never was).
    /// </summary>
    public TimeSpan? EveryUserAnsweredAfter(TimeSpan at, IEnumerable<int> users)
    {
        lock (_lock)
        {
            var latest = TimeSpan.Zero;
            foreach (var user in users)
            {
                var first = _answered.GetValueOrDefault(user)?.Where(end => end > at).DefaultIfEmpty(TimeSpan.MaxValue).Min() ?? TimeSpan.MaxValue;
                if (first == TimeSpan.MaxValue)
                {
                    return null;
                }

                latest = first - at > latest ? first - at : latest;
            }

            return latest;
        }
    }

    public LongHistogram Overall => _all;

    public IReadOnlyDictionary<string, long> ErrorsByOrigin => _errors;

    public IReadOnlyList<(string Name, PhaseStats Stats)> Phases => [.. _phaseNames.Select(name => (name, _phases[name]))];

    /// <summary>Per second of the run: requests, successes, errors, bad session answers and latency percentiles (ms).</summary>
    public IReadOnlyList<SecondSummary> Timeline()
    {
        lock (_lock)
        {
            return [.. _seconds.Select((s, i) => s.Summarize(i))];
        }
    }

    public static LongHistogram NewHistogram() => new(HighestMicros, 3);

    internal sealed class PhaseStats
    {
        public LongHistogram Histogram { get; } = NewHistogram();

        public long Requests { get; set; }

        public long Succeeded { get; set; }

        public long Errors { get; set; }

        public long Errors5xx { get; set; }

        public long GatewayErrors5xx { get; set; }

        public long BadSessions { get; set; }

        /// <summary>The users whose session was found lost in this phase.</summary>
        public HashSet<int> LostUsers { get; } = [];

        public HashSet<int> StaleUsers { get; } = [];

        /// <summary>The intended start of the last failed or wrong answer in this phase (zero when none).</summary>
        public TimeSpan LastBad { get; set; }
    }

    private sealed class SecondStats
    {
        public List<long> Latencies { get; } = [];

        public long Succeeded { get; set; }

        public long Errors { get; set; }

        public long BadSessions { get; set; }

        public SecondSummary Summarize(int second)
        {
            Latencies.Sort();
            double At(double q) => Latencies.Count == 0 ? 0 : Latencies[Math.Min(Latencies.Count - 1, (int)Math.Ceiling(q * Latencies.Count) - 1)] / 1000.0;
            return new SecondSummary(second, Latencies.Count, Succeeded, Errors, BadSessions, At(0.5), At(0.99));
        }
    }
}

internal sealed record SecondSummary(int Second, long Requests, long Succeeded, long Errors, long BadSessions, double P50Ms, double P99Ms);
