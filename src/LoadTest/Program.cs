namespace Baton.LoadTest;

/// <summary>
/// Baton's load-test tool. <c>compare</c> runs the same workload against each session strategy on this
/// machine, with the same faults, and writes a report; <c>recovery</c> measures the store's recovery
/// (Redis refill, gateway restart) with many sessions.
/// </summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        return await RunAsync(args, Console.Out, cancel.Token);
    }

    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter console, CancellationToken cancellationToken)
    {
        try
        {
            if (args.Contains("--help") || args.Contains("-h"))
            {
                await console.WriteLineAsync(args.Count > 0 && args[0] == "recovery" ? RecoverySettings.Usage : CompareSettings.Usage);
                return 0;
            }

            switch (args.Count > 0 ? args[0] : string.Empty)
            {
                case "compare":
                    await Comparison.RunAsync(CompareSettings.Parse([.. args.Skip(1)]), console, cancellationToken);
                    return 0;
                case "recovery":
                    await Recovery.RunAsync(RecoverySettings.Parse([.. args.Skip(1)]), console, cancellationToken);
                    return 0;
                default:
                    await console.WriteLineAsync(CompareSettings.Usage);
                    await console.WriteLineAsync(RecoverySettings.Usage);
                    return args.Count == 0 || args[0] is "help" or "--help" or "-h" ? 0 : 2;
            }
        }
        catch (UsageException ex)
        {
            await console.WriteLineAsync($"error: {ex.Message}");
            return 2;
        }
        catch (Exception ex) when (ex is TimeoutException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // A part that would not start (redis-server missing, a port taken): say which, and where its log is.
            await console.WriteLineAsync($"error: {ex.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await console.WriteLineAsync("cancelled");
            return 130;
        }
    }
}
