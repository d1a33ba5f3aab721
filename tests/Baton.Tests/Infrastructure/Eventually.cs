namespace Baton.Tests.Infrastructure;

/// <summary>Waits on a condition with a deadline: the only way tests wait.</summary>
internal static class Eventually
{
    public static Task TrueAsync(Func<bool> condition, TimeSpan timeout, string? because = null)
        => TrueAsync(() => Task.FromResult(condition()), timeout, because);

    public static async Task TrueAsync(Func<Task<bool>> condition, TimeSpan timeout, string? because = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Condition not met within {timeout}. {because}");
            }

            await Task.Delay(20);
        }
    }
}
