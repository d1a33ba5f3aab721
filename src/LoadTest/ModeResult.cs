using System.Text.Json.Serialization;
using HdrHistogram;

namespace Baton.LoadTest;

/// <summary>One mode's figures: one object of <c>results.json</c>.</summary>
internal sealed record ModeResult
{
    public required string Name { get; init; }

    public required string Description { get; init; }

    /// <summary>Requests in the measured run.</summary>
    public required long Requests { get; init; }

    /// <summary>Successful, correctly checked answers per second over the measured run.</summary>
    public required double Rps { get; init; }

    [JsonPropertyName("p50_ms")]
    public required double P50Ms { get; init; }

    [JsonPropertyName("p90_ms")]
    public required double P90Ms { get; init; }

    [JsonPropertyName("p99_ms")]
    public required double P99Ms { get; init; }

    [JsonPropertyName("p99_9_ms")]
    public required double P999Ms { get; init; }

    [JsonPropertyName("max_ms")]
    public required double MaxMs { get; init; }

    /// <summary>Every answer that was not 2xx, and every request with no answer.</summary>
    public required long Errors { get; init; }

    [JsonPropertyName("errors_5xx")]
    public required long Errors5xx { get; init; }

    /// <summary>5xx answers the gateway gave itself (not passed on from a backend).</summary>
    [JsonPropertyName("errors_5xx_gateway")]
    public required long GatewayErrors5xx { get; init; }

    /// <summary>Errors by origin and status, e.g. <c>backend:500</c>, <c>gateway:502</c>, <c>transport:no-answer</c>.</summary>
    public required IReadOnlyDictionary<string, long> ErrorsByOrigin { get; init; }

    /// <summary>Users whose session was, at least once, answered from an empty session.</summary>
    public required long SessionsLost { get; init; }

    /// <summary>Users whose session was, at least once, an older state of their own writes.</summary>
    public required long SessionsStale { get; init; }

    /// <summary>Users whose session held, at least once, data they never wrote.</summary>
    public required long SessionsMismatched { get; init; }

    [JsonPropertyName("sessions_lost_backend_kill")]
    public required long SessionsLostUnderBackendKill { get; init; }

    [JsonPropertyName("sessions_lost_redis_kill")]
    public required long SessionsLostUnderRedisKill { get; init; }

    /// <summary>Users whose session was lost under the gateway kill, in a scaled-out mode (absent in the others).</summary>
    [JsonPropertyName("sessions_lost_gateway_kill")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? SessionsLostUnderGatewayKill { get; init; }

    public required Capacity Capacity { get; init; }

    public required IReadOnlyList<PhaseResult> Phases { get; init; }

    public required IReadOnlyList<FaultResult> Faults { get; init; }

    public required Resources Resources { get; init; }

    public required IReadOnlyList<SecondSummary> Timeline { get; init; }

    [JsonIgnore]
    public LongHistogram? Histogram { get; init; }

    [JsonIgnore]
    public IReadOnlyDictionary<string, LongHistogram> PhaseHistograms { get; init; } = new Dictionary<string, LongHistogram>();

    public static double Ms(LongHistogram histogram, double percentile)
        => histogram.TotalCount == 0 ? 0 : Math.Round(histogram.GetValueAtPercentile(percentile) / 1000.0, 2);
}

/// <summary>The closed-model probes: the most each mode answered per second on each mix.</summary>
internal sealed record Capacity(
    [property: JsonPropertyName("read_mostly_rps")] double ReadMostlyRps,
    [property: JsonPropertyName("read_mostly_p99_ms")] double ReadMostlyP99Ms,
    [property: JsonPropertyName("write_only_rps")] double WriteOnlyRps,
    [property: JsonPropertyName("write_only_p99_ms")] double WriteOnlyP99Ms,
    [property: JsonPropertyName("errors")] long Errors);

internal sealed record PhaseResult(
    string Name,
    [property: JsonPropertyName("start_s")] double StartSeconds,
    long Requests,
    double Rps,
    [property: JsonPropertyName("p50_ms")] double P50Ms,
    [property: JsonPropertyName("p90_ms")] double P90Ms,
    [property: JsonPropertyName("p99_ms")] double P99Ms,
    [property: JsonPropertyName("p99_9_ms")] double P999Ms,
    [property: JsonPropertyName("max_ms")] double MaxMs,
    long Errors,
    [property: JsonPropertyName("errors_5xx")] long Errors5xx,
    [property: JsonPropertyName("errors_5xx_gateway")] long GatewayErrors5xx,
    [property: JsonPropertyName("sessions_lost")] long Lost,
    [property: JsonPropertyName("sessions_stale")] long Stale,
    [property: JsonPropertyName("bad_session_answers")] long BadSessions);

/// <summary>A fault and how long after it the last failed or wrong answer it caused came (0 when none did).</summary>
internal sealed record FaultResult(
    string Description,
    [property: JsonPropertyName("at_s")] double AtSeconds,
    [property: JsonPropertyName("recovery_s")] double RecoverySeconds)
{
    /// <summary>A gateway kill's: requests that failed (an error or no answer) from the kill to the end of its recovery.</summary>
    [JsonPropertyName("requests_failed")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? RequestsFailed { get; init; }

    /// <summary>A gateway kill's: seconds from the kill until every user had been answered again (null: one never was).</summary>
    [JsonPropertyName("every_session_answered_s")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? EverySessionAnsweredSeconds { get; init; }
}

/// <summary>CPU time over the measured run and peak memory of each part (null when the tool did not start it).</summary>
internal sealed record Resources(
    [property: JsonPropertyName("cpu_ms_per_request")] double? CpuMsPerRequest,
    [property: JsonPropertyName("gateway_cpu_s")] double? GatewayCpuSeconds,
    [property: JsonPropertyName("backends_cpu_s")] double? BackendsCpuSeconds,
    [property: JsonPropertyName("redis_cpu_s")] double? RedisCpuSeconds,
    [property: JsonPropertyName("gateway_peak_mb")] double? GatewayPeakMb,
    [property: JsonPropertyName("backend_peak_mb")] double? BackendPeakMb,
    [property: JsonPropertyName("redis_peak_mb")] double? RedisPeakMb);
