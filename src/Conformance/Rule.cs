namespace Baton.Conformance;

/// <summary>How one rule came out.</summary>
public enum RuleOutcome
{
    Passed,
    Failed,

    /// <summary>Not checked: it needs an option that was not given (a login route, the backend's state limit).</summary>
    Skipped,
}

/// <summary>One rule's result: its stable id (<c>area.name</c>), what it checks, and why it failed or was skipped.</summary>
public sealed record RuleResult(string Id, string Title, RuleOutcome Outcome, string? Reason)
{
    /// <summary>The line the kit prints: <c>PASS id  title</c>, <c>FAIL id  reason</c> or <c>SKIP id  reason</c>.</summary>
    public string Line => Outcome switch
    {
        RuleOutcome.Passed => $"PASS {Id}  {Title}",
        RuleOutcome.Failed => $"FAIL {Id}  {Reason}",
        _ => $"SKIP {Id}  {Reason}",
    };
}

/// <summary>A rule the backend was not asked about, because an option it needs was not given.</summary>
internal sealed class RuleSkippedException(string message) : Exception(message);

/// <summary>One protocol rule: its id, what it checks, and the check (null when the backend keeps it, else why not).</summary>
internal sealed record Rule(string Id, string Title, Func<CancellationToken, Task<string?>> Check);
