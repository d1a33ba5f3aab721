using Baton.Protocol;

namespace Baton.Conformance;

internal sealed partial class RuleBook
{
    private Task<SizeBase>? _sizeBase;

    /// <summary>A session grown within its grant's max, read, then grown past it: what the size rules look at.</summary>
    private sealed record SizeBase(KitSession Session, int Max, Exchange Within, Exchange ReadBefore, Exchange Over);

    private IEnumerable<Rule> SizeRules()
    {
        yield return new("size.within-max", "a change that keeps the state within the grant's max is served with a checkpoint", async ct =>
        {
            var b = await SizeBaseAsync(ct);
            return !b.Within.Answered || b.Within.Status is < 200 or > 299 ? $"growing the state to about {b.Max / 8} bytes under max={b.Max} was {b.Within.Outcome}, expected 2xx {Probe.Said(b.Within)}".TrimEnd()
                : !b.Within.Has(ProtocolConstants.CheckpointHeader) ? $"growing the state to about {b.Max / 8} bytes under max={b.Max} was answered without a checkpoint"
                : null;
        });
        yield return new("size.grant-max", "a change that makes the state exceed the grant's max is refused 413 with a plain-text reason", async ct =>
        {
            var b = await SizeBaseAsync(ct);
            var what = $"a change growing the state past the grant's max={b.Max}";
            return Expect(b.Over, 413, what)
                ?? NoProtocolAnswer(b.Over, what)
                ?? PlainText([b.Over], "refused change");
        });
        yield return new("size.rolled-back", "a change refused 413 is rolled back: the next read shows the old state, and the next change is the next version", async ct =>
        {
            var b = await SizeBaseAsync(ct);
            if (await UnchangedAsync(b.Session, b.ReadBefore, "after the refused change", ct, b.Max) is { } failure)
            {
                return failure;
            }

            var change = await probe.CallAsync(Options.ChangeRoute, probe.Grant(b.Session, b.Max), "a change after the refused one", ct);
            var checkpoint = Probe.ReadLoosely(change);
            return checkpoint?.Version == b.Session.Version + 1 ? null
                : $"a change after the refused one (grant ver={b.Session.Version}) was {change.Outcome} with checkpoint ver={(checkpoint is null ? "(none)" : Field(checkpoint, "ver"))}, expected ver={b.Session.Version + 1}";
        });
        yield return new("size.backend-max", "a change past the backend's own state limit (--max-state-bytes) is refused 413", async ct =>
        {
            if (Options.MaxStateBytes is not { } limit)
            {
                throw new RuleSkippedException("give --max-state-bytes (the backend's own limit) to check it");
            }

            var session = await probe.NewSessionAsync(0, 1, "a session to grow", ct);
            var over = await probe.CallAsync(Options.GrowBy(limit + 1), probe.Grant(session, int.MaxValue), "past the backend's own limit", ct);
            return Expect(over, 413, $"a change growing the state past the backend's limit of {limit} bytes (the grant's max far above)");
        });
    }

    private Task<SizeBase> SizeBaseAsync(CancellationToken cancellationToken) => _sizeBase ??= MakeSizeBaseAsync(cancellationToken);

    private async Task<SizeBase> MakeSizeBaseAsync(CancellationToken cancellationToken)
    {
        var max = Math.Min(64 * 1024, Options.MaxStateBytes ?? int.MaxValue);
        var session = await probe.NewSessionAsync(0, 1, "a session to grow", cancellationToken);
        var within = await probe.CallAsync(Options.GrowBy(max / 8), probe.Grant(session, max), "growing within max", cancellationToken);
        if (Probe.ReadLoosely(within) is { Version: { } version } checkpoint)
        {
            session.Version = version;
            session.State = checkpoint.State;
        }

        var read = await probe.CallAsync(Options.ReadRoute, probe.Grant(session, max), "a read before growing past max", cancellationToken);
        var over = await probe.CallAsync(Options.GrowBy(max * 2), probe.Grant(session, max), "growing past max", cancellationToken);
        return new SizeBase(session, max, within, read, over);
    }

    private IEnumerable<Rule> ActionRules()
    {
        yield return new("action.rotate", "a login answers Baton-Session-Action action=rotate for the grant's sid, MAC valid", ct => ActionAsync(Options.LoginRoute, "--login-path", SessionActionKind.Rotate, Options.LoginBody, ct));
        yield return new("action.end", "a logout answers Baton-Session-Action action=end for the grant's sid, MAC valid", ct => ActionAsync(Options.LogoutRoute, "--logout-path", SessionActionKind.End, null, ct));
    }

    private IEnumerable<Rule> RetiredRules()
    {
        yield return new("retired.rotated", "after a login, every grant of the old sid is refused 410 with Baton-Retired: sid=<old sid>, without running the app", ct => RetiredAsync(Options.LoginRoute, "--login-path", Options.LoginBody, ct));
        yield return new("retired.ended", "after a logout, every grant of its sid is refused 410 with Baton-Retired: sid=<sid>, without running the app", ct => RetiredAsync(Options.LogoutRoute, "--logout-path", null, ct));
        yield return new("retired.restore", "a restore of the sid a login rotated away from, with the state the login carried, is refused 410 and installs nothing", RetiredRestoreAsync);
    }

    /// <summary>A session changed once, then sent through the login or logout route: its sid, with the version and state the action's response carried.</summary>
    private async Task<KitSession> RetireAsync(AppRoute? route, string option, string? body, CancellationToken cancellationToken)
    {
        if (route is null)
        {
            throw new RuleSkippedException($"give {option} to check it");
        }

        var session = await probe.NewSessionAsync(0, 1, "a session to retire", cancellationToken);
        var exchange = await probe.CallAsync(route, probe.Grant(session), "the session's " + (option == "--login-path" ? "login" : "logout"), cancellationToken, body);
        if (!exchange.Answered || exchange.Status is < 200 or > 299 || !exchange.Has(ProtocolConstants.SessionActionHeader))
        {
            throw new PreconditionException($"{exchange.Description} was {exchange.Outcome}{(exchange.Has(ProtocolConstants.SessionActionHeader) ? string.Empty : $" without {ProtocolConstants.SessionActionHeader}")}, expected 2xx with one {Probe.Said(exchange)}".TrimEnd());
        }

        if (Probe.ReadLoosely(exchange) is { Version: { } version, Length: not null } checkpoint)
        {
            session.Version = version;
            session.State = checkpoint.State;
        }

        return session;
    }

    private async Task<string?> RetiredAsync(AppRoute? route, string option, string? body, CancellationToken cancellationToken)
    {
        var session = await RetireAsync(route, option, body, cancellationToken);

        // As a gateway that stored the action's response would send it (a change: the app must not run), then as one
        // that takes the id for a new session.
        foreach (var (appRoute, version) in new[] { (Options.ChangeRoute, session.Version), (Options.ReadRoute, 0L) })
        {
            var what = FormattableString.Invariant($"a grant of the retired sid at ver={version}");
            var exchange = await probe.CallAsync(appRoute, probe.Grant(session.Id, version, session.Epoch), what, cancellationToken);
            var expected = "sid=" + session.Id;
            if ((Expect(exchange, 410, what) ?? NoProtocolAnswer(exchange, what)) is { } failure)
            {
                return failure;
            }

            if (exchange.Single(ProtocolConstants.RetiredHeader) != expected)
            {
                return $"{what} was refused 410 with {ProtocolConstants.RetiredHeader}: {exchange.Single(ProtocolConstants.RetiredHeader) ?? "(absent or repeated)"}, expected {expected}";
            }
        }

        return null;
    }

    private async Task<string?> RetiredRestoreAsync(CancellationToken cancellationToken)
    {
        var session = await RetireAsync(Options.LoginRoute, "--login-path", Options.LoginBody, cancellationToken);
        var restore = probe.RestoreFor(session.Id, session.Version, session.Epoch + 1, session.State);
        var refused = await probe.RestoreAsync(restore.Format(probe.Keys), session.State, "the retired sid with the login's state", cancellationToken);
        if (Expect(refused, 410, "a restore of the sid a login rotated away from") is { } failure)
        {
            return failure;
        }

        var read = await probe.CallAsync(Options.ReadRoute, probe.Grant(session.Id, restore.Version, restore.Epoch), "a grant of the refused restore's ver and epoch", cancellationToken);
        return read.Answered && read.Status is >= 200 and <= 299
            ? $"after the refused restore, a grant of its ver and epoch was {read.Outcome}: the state was installed under the retired sid {Probe.Said(read)}".TrimEnd()
            : null;
    }

    private async Task<string?> ActionAsync(AppRoute? route, string option, SessionActionKind expected, string? body, CancellationToken cancellationToken)
    {
        if (route is null)
        {
            throw new RuleSkippedException($"give {option} to check it");
        }

        var session = await probe.NewSessionAsync(0, 1, "a session to " + (expected == SessionActionKind.Rotate ? "log in" : "log out"), cancellationToken);
        var exchange = await probe.CallAsync(route, probe.Grant(session), "with a grant", cancellationToken, body);
        if (!exchange.Answered || exchange.Status is < 200 or > 299)
        {
            return $"{exchange.Description} was {exchange.Outcome}, expected 2xx {Probe.Said(exchange)}".TrimEnd();
        }

        var header = exchange.Single(ProtocolConstants.SessionActionHeader);
        var verdict = SessionAction.TryParse(header, probe.Keys, out var action);
        if (verdict != ProtocolVerdict.Valid)
        {
            return $"{exchange.Description} carried {ProtocolConstants.SessionActionHeader}: {header ?? "(absent or repeated)"}, which is {verdict.ToString().ToLowerInvariant()}";
        }

        return action!.SessionId != session.Id ? $"{exchange.Description}: the session action is for sid {action.SessionId}, expected the grant's {session.Id}"
            : action.Action != expected ? $"{exchange.Description}: the session action is {action.Action.ToString().ToLowerInvariant()}, expected {expected.ToString().ToLowerInvariant()}"
            : null;
    }

    private IEnumerable<Rule> IncarnationRules()
    {
        yield return new("incarnation.restore-get", "GET /_baton/restore is answered 405 carrying Baton-Incarnation", async ct =>
        {
            var exchange = await probe.RestoreAsync(null, [], "the gateway's incarnation question", ct, "GET");
            return Expect(exchange, 405, "GET /_baton/restore")
                ?? (Ids.IsValidId(exchange.Single(ProtocolConstants.IncarnationHeader)) ? null : $"the 405 carried Baton-Incarnation {exchange.Single(ProtocolConstants.IncarnationHeader) ?? "(absent or repeated)"}, expected one id");
        });
        yield return new("incarnation.every-response", "every response of the run carried the same Baton-Incarnation", _ => Task.FromResult(EveryResponse()));
    }

    private string? EveryResponse()
    {
        var answered = probe.Exchanges.Where(e => e.Answered).ToList();
        var without = answered.Where(e => !Ids.IsValidId(e.Single(ProtocolConstants.IncarnationHeader))).ToList();
        if (without.Count > 0)
        {
            return $"{without.Count} of {answered.Count} responses carried no single valid Baton-Incarnation, the first: {without[0].Description}, {without[0].Outcome} with '{without[0].Single(ProtocolConstants.IncarnationHeader) ?? "(absent or repeated)"}'";
        }

        var other = answered.FirstOrDefault(e => e.Single(ProtocolConstants.IncarnationHeader) != probe.Incarnation);
        return other is null ? null : $"{other.Description} carried Baton-Incarnation {other.Single(ProtocolConstants.IncarnationHeader)}, the backend's first answers {probe.Incarnation}: the process changed during the run";
    }
}
