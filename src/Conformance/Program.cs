namespace Baton.Conformance;

/// <summary>The kit's command line: parses the arguments and runs <see cref="ConformanceKit"/>; its exit code is the run's.</summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Any(a => a is "--help" or "-h"))
        {
            await Console.Out.WriteLineAsync(ConformanceArguments.Usage);
            return 0;
        }

        var options = ConformanceArguments.Parse(args, out var errors);
        if (options is null)
        {
            foreach (var error in errors)
            {
                await Console.Error.WriteLineAsync("error: " + error);
            }

            await Console.Error.WriteLineAsync("Run with --help for the options.");
            return 2;
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };

        try
        {
            var report = await ConformanceKit.RunAsync(options, Console.Out, cancel.Token);
            return report.ExitCode;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            await Console.Error.WriteLineAsync("cancelled");
            return 130;
        }
    }
}
