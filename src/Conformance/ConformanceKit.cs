using System.Diagnostics;
using System.Globalization;
using Baton.Protocol;

namespace Baton.Conformance;

/// <summary>What a run found: one result per rule, or why the run could not start.</summary>
/// <param name="Results">Every rule's result, in the order they ran.</param>
/// <param name="Error">Why no rule ran (bad options, an unreachable backend); null when they ran.</param>
public sealed record ConformanceReport(IReadOnlyList<RuleResult> Results, string? Error)
{
    public int PassedCount => Results.Count(r => r.Outcome == RuleOutcome.Passed);

    public int FailedCount => Results.Count(r => r.Outcome == RuleOutcome.Failed);

    public int SkippedCount => Results.Count(r => r.Outcome == RuleOutcome.Skipped);

    /// <summary>0 when every rule checked passed, 1 when any failed, 2 when the run could not start.</summary>
    public int ExitCode => Error is not null ? 2 : FailedCount > 0 ? 1 : 0;

    /// <summary>The result of one rule by id.</summary>
    public RuleResult this[string id] => Results.First(r => r.Id == id);
}

/// <summary>
/// The protocol conformance kit: acts as a Baton gateway towards one backend (minting grants, reading
/// checkpoints, sending restores with the shared secret) and checks every rule of docs/protocol.md, one
/// line per rule. Every request has a timeout and the whole run a bound; a backend's garbage answer fails a
/// rule, never the kit.
/// </summary>
public static class ConformanceKit
{
    /// <summary>Runs every rule against <see cref="ConformanceOptions.Backend"/>, writing one line per rule and a summary to <paramref name="output"/>.</summary>
    public static async Task<ConformanceReport> RunAsync(ConformanceOptions options, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(output);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            var message = string.Join(Environment.NewLine, errors.Select(e => "error: " + e));
            await output.WriteLineAsync(message);
            return new ConformanceReport([], message);
        }

        using var overall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        overall.CancelAfter(options.OverallTimeout);
        using var probe = new Probe(options);
        var started = Stopwatch.GetTimestamp();

        // The gateway's own first question: which process answers here.
        var hello = await probe.RestoreAsync(null, [], "which process answers", overall.Token, "GET");
        if (!hello.Answered)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var message = $"error: cannot reach the backend at {options.Backend}: {hello.Error}";
            await output.WriteLineAsync(message);
            return new ConformanceReport([], message);
        }

        probe.Incarnation = ValidId(hello.Single(ProtocolConstants.IncarnationHeader));
        if (probe.Incarnation is null)
        {
            var health = await probe.CallAsync(options.HealthRoute, grant: null, "which process answers", overall.Token);
            probe.Incarnation = ValidId(health.Single(ProtocolConstants.IncarnationHeader));
        }

        await output.WriteLineAsync($"Baton protocol conformance: {options.Backend} (incarnation {probe.Incarnation ?? "unknown: the backend named none"})");
        var results = new List<RuleResult>();
        foreach (var rule in new RuleBook(probe).All())
        {
            var result = await RunRuleAsync(rule, options, overall, cancellationToken);
            results.Add(result);
            await output.WriteLineAsync(result.Line);
        }

        var report = new ConformanceReport(results, Error: null);
        if (probe.Exchanges.Any(e => e.Status == 401 && e.Description.EndsWith(RuleBook.FirstChangeWhat + ")", StringComparison.Ordinal)))
        {
            await output.WriteLineAsync("hint: a valid grant was refused 401; check that --secret is the backend's Baton:Secret and that both clocks are right.");
        }

        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture);
        await output.WriteLineAsync(report.FailedCount == 0
            ? $"{report.PassedCount} passed, {report.SkippedCount} skipped of {results.Count} rules in {seconds} s: the backend conforms."
            : $"{report.FailedCount} failed, {report.PassedCount} passed, {report.SkippedCount} skipped of {results.Count} rules in {seconds} s: the backend does not conform.");
        return report;
    }

    private static async Task<RuleResult> RunRuleAsync(Rule rule, ConformanceOptions options, CancellationTokenSource overall, CancellationToken cancellationToken)
    {
        if (overall.IsCancellationRequested)
        {
            cancellationToken.ThrowIfCancellationRequested();
            return Failed(rule, TimeLimit(options));
        }

        try
        {
            var failure = await rule.Check(overall.Token);
            return failure is null ? new RuleResult(rule.Id, rule.Title, RuleOutcome.Passed, null) : Failed(rule, failure);
        }
        catch (RuleSkippedException ex)
        {
            return new RuleResult(rule.Id, rule.Title, RuleOutcome.Skipped, ex.Message);
        }
        catch (PreconditionException ex)
        {
            return Failed(rule, "could not get the backend there: " + ex.Message);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Failed(rule, TimeLimit(options));
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested && ex is not OutOfMemoryException)
        {
            // A rule's own step threw on something the backend sent; the rule fails, the run goes on.
            return Failed(rule, $"the backend's answers could not be checked: {ex.GetType().Name}: {ex.Message}");
        }
    }

    private static RuleResult Failed(Rule rule, string reason) => new(rule.Id, rule.Title, RuleOutcome.Failed, reason);

    private static string TimeLimit(ConformanceOptions options)
        => FormattableString.Invariant($"not finished within the run's time limit ({options.OverallTimeout.TotalSeconds:0} s)");

    private static string? ValidId(string? text) => Ids.IsValidId(text) ? text : null;
}
