using System.Diagnostics;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// Waits on a condition with a deadline: the only way tests wait. The deadline is on a monotonic clock and
/// bounds each probe too, so a probe that hangs (a request to a paused server) fails the wait instead of
/// outliving it.
/// </summary>
internal static class Eventually
{
    public static Task TrueAsync(Func<bool> condition, TimeSpan timeout, string? because = null)
        => TrueAsync(() => Task.FromResult(condition()), timeout, because);

    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string? because = null)
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            var left = timeout - Stopwatch.GetElapsedTime(started);
            bool met;
            try
            {
                met = await condition().WaitAsync(left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }
            catch (TimeoutException)
            {
                met = false;
            }

            if (met)
            {
                return;
            }

            if (Stopwatch.GetElapsedTime(started) > timeout)
            {
                Assert.Fail($"Condition not met within {timeout}. {because}");
            }

            await Task.Delay(20);
        }
    }
}
