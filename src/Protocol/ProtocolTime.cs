namespace Baton.Protocol;

/// <summary>Message timestamps: Unix milliseconds, accepted within a clock-skew window either way.</summary>
public static class ProtocolTime
{
    public static long Now(TimeProvider time) => time.GetUtcNow().ToUnixTimeMilliseconds();

    public static bool IsFresh(long timestamp, TimeProvider time, TimeSpan skew)
        => Math.Abs(Now(time) - timestamp) <= (long)skew.TotalMilliseconds;
}
