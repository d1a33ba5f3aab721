using System.Diagnostics;
using Baton.Conformance;
using Baton.LoadTest;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Baton.Tests.Conformance;

/// <summary>
/// The conformance kit passes the real .NET backend and the Express one, and fails a backend broken in one way on exactly the
/// rules that way breaks: each rule can fail, and one broken behaviour does not drown the report.
/// </summary>
[Trait("Category", "Functional")]
public sealed class ConformanceKitTests(BrokenBackend backend) : IClassFixture<BrokenBackend>
{
    public static TheoryData<Breakage, string[]> Breakages => new()
    {
        { Breakage.ServesMalformedGrantsAsLocal, ["grant.malformed", "grant.missing-key", "grant.duplicate-key", "grant.unknown-key", "grant.non-canonical-id"] },
        { Breakage.AcceptsUnsupportedGrantVersion, ["grant.unsupported-version"] },
        { Breakage.AcceptsRepeatedAndUnknownGrantKeys, ["grant.duplicate-key", "grant.unknown-key"] },
        { Breakage.AcceptsNonCanonicalSid, ["grant.non-canonical-id"] },
        { Breakage.AcceptsBadGrantMac, ["grant.bad-mac", "mac.grant-other-purpose"] },
        { Breakage.AcceptsGrantOutsideSkew, ["grant.ts-past", "grant.ts-future"] },
        { Breakage.GrantRefusalsNotPlainText, ["grant.refusal-text"] },
        { Breakage.CheckpointsRequestsWithoutGrant, ["grant.none"] },
        { Breakage.CheckpointWithBadMac, ["checkpoint.mac"] },
        { Breakage.CheckpointMacWithGrantKey, ["checkpoint.mac"] },
        { Breakage.CheckpointOfAnotherSid, ["checkpoint.sid"] },
        { Breakage.CheckpointOfAnotherEpoch, ["checkpoint.epoch", "grant.adopts-epoch", "restore.serves-restored"] },
        { Breakage.CheckpointWithWrongDigest, ["checkpoint.digest"] },
        { Breakage.DropsIncarnationOnAppResponses, ["checkpoint.incarnation", "incarnation.every-response"] },
        { Breakage.IgnoresStaleness, ["stale.no-copy", "stale.higher-version", "stale.app-not-run", "stale.other-epoch", "restore.refused-installs-nothing"] },
        { Breakage.IgnoresEpoch, ["stale.other-epoch"] },
        { Breakage.StaleWithWrongHave, ["stale.higher-version"] },
        { Breakage.OversizedChangeAnswered200, ["size.grant-max", "size.backend-max"] },
        { Breakage.IgnoresGrantMax, ["size.grant-max", "size.rolled-back"] },
        { Breakage.RestoreAcceptsAnyMethod, ["restore.method"] },
        { Breakage.RestoreMissingAnswered400, ["restore.missing"] },
        { Breakage.AcceptsBadRestoreMac, ["restore.bad-mac", "mac.restore-other-purpose"] },
        { Breakage.IgnoresRestoreTarget, ["restore.wrong-target"] },
        { Breakage.AcceptsRestoreOutsideSkew, ["restore.ts-past", "restore.ts-future"] },
        { Breakage.AcceptsReplayedRestore, ["restore.replay"] },
        { Breakage.IgnoresRestoreDigest, ["restore.digest"] },
        { Breakage.AcceptsUnreadableState, ["restore.unreadable-state"] },
        { Breakage.AcceptsOlderEpochRestore, ["restore.older-epoch"] },
        { Breakage.AcceptsLowerVersionRestore, ["restore.lower-version"] },
        { Breakage.SessionActionWithBadMac, ["action.rotate", "action.end"] },
        { Breakage.RestoreGetNotAnswered405, ["incarnation.restore-get", "incarnation.every-response"] },
        { Breakage.VersionsOffByAThousand, ["checkpoint.version", "restore.serves-restored"] },
        { Breakage.CheckpointsReads, ["checkpoint.read-only", "stale.app-not-run", "restore.serves-restored", "restore.later-epoch-replaces", "size.rolled-back"] },
        { Breakage.RefusesEmptyRestore, ["restore.check"] },
        { Breakage.RestoreAcceptedWithoutIncarnation, ["restore.accept", "incarnation.every-response"] },
        { Breakage.KeepsHigherVersionOverLaterEpoch, ["restore.later-epoch-replaces"] },
        { Breakage.RestoreMalformedAnswered401, ["restore.malformed"] },
        { Breakage.AcceptsUnsupportedRestoreVersion, ["restore.unsupported-version"] },
        { Breakage.RestoreLengthCheckedAfterBody, ["restore.too-large"] },
        { Breakage.AnswersWrongLengthRestores204, ["restore.body-short", "restore.body-long"] },
        { Breakage.RestoreRefusalsNotPlainText, ["restore.refusal-text"] },
        { Breakage.ShrinksGrantMax, ["size.within-max"] },
        { Breakage.RetiredAnsweredStale, ["retired.rotated", "retired.ended"] },
        { Breakage.AcceptsRestoreOfRetiredSession, ["retired.restore"] },
        { Breakage.SendsDeltasUnasked, ["delta.only-when-offered"] },
        { Breakage.DeltaBaseOffByOne, ["delta.base"] },
        { Breakage.DeltaWithWrongDigest, ["delta.wellformed"] },
        { Breakage.MalformedDelta, ["delta.wellformed"] },
        { Breakage.DeltaWithWrongSize, ["delta.applies"] },
        { Breakage.DeltaOfWrongValues, ["delta.applies"] },
    };

    [Fact]
    public async Task TheDotNetBackend_PassesEveryRule_WithExitCode0()
    {
        backend.Current = Breakage.None;
        var output = new StringWriter();

        var report = await ConformanceKit.RunAsync(Options(backend.Address), output, CancellationToken.None);

        Assert.True(report.FailedCount == 0, output.ToString());
        Assert.Equal(0, report.SkippedCount);
        Assert.Equal(0, report.ExitCode);
        Assert.True(report.Results.Count >= 50, $"only {report.Results.Count} rules ran");
        Assert.Equal(report.Results.Count, report.Results.Select(r => r.Id).Distinct().Count());
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(report.Results, r => Assert.Contains(lines, line => line.StartsWith("PASS " + r.Id + "  ", StringComparison.Ordinal)));
        Assert.Contains("the backend conforms", lines[^1], StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(BackendKinds.All), MemberType = typeof(BackendKinds))]
    public async Task EachDemoBackendProcess_PassesEveryRule_WithExitCode0(BackendKind kind)
    {
        await using var demo = await BackendProcess.StartAsync("c1", kind: kind);
        var output = new StringWriter();

        var report = await ConformanceKit.RunAsync(Options(demo.Address), output, CancellationToken.None);

        Assert.True(report.FailedCount == 0 && report.SkippedCount == 0, output.ToString());
        Assert.Equal(0, report.ExitCode);
        Assert.True(report.Results.Count >= 50, $"only {report.Results.Count} rules ran");
    }

    [Theory]
    [MemberData(nameof(Breakages))]
    public async Task ABackendBrokenInOneWay_FailsExactlyTheRulesThatWayBreaks(Breakage breakage, string[] broken)
    {
        backend.Current = breakage;
        var output = new StringWriter();

        var report = await ConformanceKit.RunAsync(Options(backend.Address), output, CancellationToken.None);

        var failed = report.Results.Where(r => r.Outcome == RuleOutcome.Failed).Select(r => r.Id).Order().ToArray();
        Assert.True(broken.Order().SequenceEqual(failed), $"expected to fail: {string.Join(", ", broken.Order())}; failed: {string.Join(", ", failed)}\n{output}");
        Assert.Equal(1, report.ExitCode);
        Assert.All(report.Results.Where(r => r.Outcome == RuleOutcome.Failed), r =>
        {
            Assert.Contains("FAIL " + r.Id + "  " + r.Reason, output.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain("could not be checked", r.Reason, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task WithoutLoginOrLimitOptions_TheirRulesAreSkipped_AndTheRunStillPasses()
    {
        backend.Current = Breakage.None;
        var output = new StringWriter();

        var report = await ConformanceKit.RunAsync(new ConformanceOptions { Backend = backend.Address, Secret = TestGateway.Secret }, output, CancellationToken.None);

        Assert.Equal(["action.end", "action.rotate", "retired.ended", "retired.restore", "retired.rotated", "size.backend-max"], report.Results.Where(r => r.Outcome == RuleOutcome.Skipped).Select(r => r.Id).Order());
        Assert.Equal(0, report.ExitCode);
        Assert.Contains("SKIP action.rotate  give --login-path", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnotherSecret_FailsTheGrantedRules_WithAHintAboutTheSecret()
    {
        backend.Current = Breakage.None;
        var output = new StringWriter();

        var report = await ConformanceKit.RunAsync(new ConformanceOptions { Backend = backend.Address, Secret = TestGateway.Secret + "-not" }, output, CancellationToken.None);

        Assert.Equal(1, report.ExitCode);
        Assert.Equal(RuleOutcome.Failed, report["checkpoint.present"].Outcome);
        Assert.Contains("answered 401", report["checkpoint.present"].Reason, StringComparison.Ordinal);
        Assert.Contains("hint: a valid grant was refused 401; check that --secret", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUnreachableBackend_EndsTheRunWithExitCode2_AndSaysSo()
    {
        var port = Baton.LoadTest.ManagedProcess.FreePort();
        var output = new StringWriter();

        var report = await ConformanceKit.RunAsync(new ConformanceOptions { Backend = new Uri($"http://127.0.0.1:{port}"), Secret = TestGateway.Secret, RequestTimeout = TimeSpan.FromSeconds(2) }, output, CancellationToken.None);

        Assert.Equal(2, report.ExitCode);
        Assert.Empty(report.Results);
        Assert.StartsWith($"error: cannot reach the backend at http://127.0.0.1:{port}/", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AServerAnsweringGarbage_FailsRules_WithoutTheKitThrowing()
    {
        // Every answer 200 with a broken checkpoint, a wrong incarnation and a body shorter than any len.
        await using var garbage = await StartServerAsync(async context =>
        {
            context.Response.Headers["Baton-Checkpoint"] = "v=2; sid=x; ver=-1; len=99999; mac=?";
            context.Response.Headers["Baton-Incarnation"] = "not an id";
            context.Response.Headers["Baton-Session-Action"] = "v=1; action=explode";
            await context.Response.WriteAsync("garbage");
        });
        var output = new StringWriter();

        var report = await ConformanceKit.RunAsync(Options(garbage.Address), output, CancellationToken.None);

        Assert.Equal(1, report.ExitCode);
        Assert.True(report.FailedCount > 40, output.ToString());
        Assert.All(report.Results, r => Assert.DoesNotContain("could not be checked", r.Reason ?? string.Empty, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AServerThatNeverAnswers_IsBoundedByTheRequestAndRunTimeouts()
    {
        await using var silent = await StartServerAsync(async context => await Task.Delay(Timeout.Infinite, context.RequestAborted));
        var output = new StringWriter();
        var started = Stopwatch.GetTimestamp();

        var report = await ConformanceKit.RunAsync(new ConformanceOptions
        {
            Backend = silent.Address,
            Secret = TestGateway.Secret,
            RequestTimeout = TimeSpan.FromMilliseconds(200),
            OverallTimeout = TimeSpan.FromSeconds(1),
        }, output, CancellationToken.None);

        Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(10), output.ToString());
        Assert.Equal(2, report.ExitCode);
        Assert.Contains("no complete answer within 0.2 s", output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AServerThatStallsAfterItsFirstAnswer_FailsTheRestAsNotFinishedInTime()
    {
        var answered = 0;
        await using var stalling = await StartServerAsync(async context =>
        {
            if (Interlocked.Increment(ref answered) > 1)
            {
                await Task.Delay(Timeout.Infinite, context.RequestAborted);
            }

            context.Response.StatusCode = 405;
        });
        var output = new StringWriter();
        var started = Stopwatch.GetTimestamp();

        var report = await ConformanceKit.RunAsync(new ConformanceOptions
        {
            Backend = stalling.Address,
            Secret = TestGateway.Secret,
            RequestTimeout = TimeSpan.FromMilliseconds(300),
            OverallTimeout = TimeSpan.FromSeconds(2),
        }, output, CancellationToken.None);

        Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(15), output.ToString());
        Assert.Equal(1, report.ExitCode);
        Assert.Contains(report.Results, r => r.Reason?.Contains("not finished within the run's time limit (2 s)", StringComparison.Ordinal) == true);
        Assert.Contains(report.Results, r => r.Reason?.Contains("no complete answer within 0.3 s", StringComparison.Ordinal) == true);
    }

    [Theory]
    [InlineData(Breakage.None, 0, "PASS restore.replay  a replayed restore (a nonce already used) is refused 409")]
    [InlineData(Breakage.AcceptsReplayedRestore, 1, "FAIL restore.replay  a replayed restore was answered 204, expected 409")]
    public async Task TheCommandLine_PrintsOneLinePerRule_AndExitsWithTheVerdict(Breakage breakage, int exitCode, string line)
    {
        backend.Current = breakage;

        var (code, stdout, _) = await RunKitAsync("--backend", backend.Address.ToString(), "--secret", TestGateway.Secret, "--login-path", "/login", "--logout-path", "/logout");

        Assert.True(exitCode == code, stdout);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Contains(line, lines);
        Assert.True(lines.Count(l => l.StartsWith("PASS ", StringComparison.Ordinal) || l.StartsWith("FAIL ", StringComparison.Ordinal) || l.StartsWith("SKIP ", StringComparison.Ordinal)) >= 50, stdout);
        Assert.Contains(exitCode == 0 ? "the backend conforms" : "the backend does not conform", lines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheCommandLine_RefusesBadArguments_WithExitCode2()
    {
        var (code, _, stderr) = await RunKitAsync("--backend", "http://127.0.0.1:1", "--secret", "short");

        Assert.Equal(2, code);
        Assert.Contains("error: --secret must be at least 32 characters", stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new string[0], "--backend is required")]
    [InlineData(new[] { "--backend", "http://127.0.0.1:1" }, "--secret is required")]
    [InlineData(new[] { "--backend", "ftp://x", "--secret", TestGateway.Secret }, "--backend must be an absolute http:// or https:// address (it is 'ftp://x')")]
    [InlineData(new[] { "--backend", "http://127.0.0.1:1", "--secret", "short" }, "--secret must be at least 32 characters")]
    [InlineData(new[] { "--backend", "http://127.0.0.1:1", "--secret", TestGateway.Secret, "--read-path", "GET counter" }, "--read-path must be \"METHOD /path\" or \"/path\"")]
    [InlineData(new[] { "--backend", "http://127.0.0.1:1", "--secret", TestGateway.Secret, "--grow-path", "/blob" }, "--grow-path must contain {bytes}")]
    [InlineData(new[] { "--backend", "http://127.0.0.1:1", "--secret", TestGateway.Secret, "--max-state-bytes", "-3" }, "--max-state-bytes must be a whole number of at least 1 (it is '-3')")]
    [InlineData(new[] { "--backend", "http://127.0.0.1:1", "--secret", TestGateway.Secret, "--colour" }, "unknown option --colour")]
    [InlineData(new[] { "--backend", "http://127.0.0.1:1", "--secret", TestGateway.Secret, "--timeout" }, "--timeout needs a value")]
    public void BadArguments_AreRefused_NamingWhatIsWrong(string[] args, string message)
    {
        var options = ConformanceArguments.Parse(args, out var errors);

        Assert.Null(options);
        Assert.Contains(errors, e => e.Contains(message, StringComparison.Ordinal));
    }

    [Fact]
    public void Arguments_SetTheRoutesAndLimits()
    {
        var options = ConformanceArguments.Parse(
            ["--backend=http://127.0.0.1:5001", "--secret", TestGateway.Secret, "--change-path", "PUT /cart", "--read-path", "/cart", "--login-path", "/login", "--max-state-bytes", "2048", "--timeout", "30"],
            out var errors);

        Assert.Empty(errors);
        Assert.NotNull(options);
        Assert.Equal(new Uri("http://127.0.0.1:5001"), options.Backend);
        Assert.Equal(new AppRoute("PUT", "/cart"), options.ChangeRoute);
        Assert.Equal(new AppRoute("GET", "/cart"), options.ReadRoute);
        Assert.Equal(new AppRoute("POST", "/login"), options.LoginRoute);
        Assert.Null(options.LogoutRoute);
        Assert.Equal(new AppRoute("POST", "/blob?bytes=10"), options.GrowBy(10));
        Assert.Equal(2048, options.MaxStateBytes);
        Assert.Equal(TimeSpan.FromSeconds(30), options.OverallTimeout);
    }

    // The kit as a user runs it: its own process, bounded, killed if it outlives the bound.
    private static async Task<(int Code, string Stdout, string Stderr)> RunKitAsync(params string[] args)
    {
        var start = TestServers.Dotnet("Baton.Conformance.dll", args);
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(bound.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("the kit did not finish within 60 s");
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    private static ConformanceOptions Options(Uri address) => new()
    {
        Backend = address,
        Secret = TestGateway.Secret,
        LoginRoute = new AppRoute("POST", "/login"),
        LogoutRoute = new AppRoute("POST", "/logout"),
        MaxStateBytes = 1024 * 1024,
    };

    private static async Task<PlainServer> StartServerAsync(RequestDelegate handler)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--urls=http://127.0.0.1:0"], ContentRootPath = TestPaths.NewFolder("conformance-server") });
        var app = builder.Build();
        app.Run(handler);
        await app.StartAsync();
        return new PlainServer(app, TestBackend.ServerAddress(app));
    }

    private sealed record PlainServer(WebApplication App, Uri Address) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }
}
