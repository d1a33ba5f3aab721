namespace Baton.Protocol;

/// <summary>Message timestamps: Unix milliseconds, accepted within a clock-skew window either way.</summary>
public static class ProtocolTime
{
    /// <summary>The clock's time as Unix milliseconds.</summary>
    public static long Now(TimeProvider time) => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Whether <paramref name="timestamp"/> is within <paramref name="skew"/> of the clock, either way.</summary>
    public static bool IsFresh(long timestamp, TimeProvider time, TimeSpan skew)
        => Math.Abs(Now(time) - timestamp) <= (long)skew.TotalMilliseconds;
}
