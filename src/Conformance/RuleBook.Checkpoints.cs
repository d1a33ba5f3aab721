using System.Text;
using Baton.Protocol;

namespace Baton.Conformance;

internal sealed partial class RuleBook
{
    /// <summary>How the first change of the checkpoint rules is described (a valid grant of a new session).</summary>
    public const string FirstChangeWhat = "a new session's first change";

    private const long FirstEpoch = 7;

    /// <summary>A new session (epoch 7) changed twice, then read: the exchanges the checkpoint rules look at.</summary>
    private sealed record FirstChanges(KitSession Session, Exchange First, Exchange Second, Exchange Read);

    private IEnumerable<Rule> CheckpointRules()
    {
        yield return new("checkpoint.present", "a change is answered 2xx with one well-formed Baton-Checkpoint of v=2", async ct =>
        {
            var first = await FirstAsync(ct);
            return Present(first.First, "the first change") ?? Present(first.Second, "the second change");
        });
        yield return new("checkpoint.mac", "the checkpoint's MAC holds with the checkpoint key", async ct =>
        {
            var first = await FirstAsync(ct);
            return Signed(first.First, "the first change") ?? Signed(first.Second, "the second change");
        });
        yield return EachCheckpoint("checkpoint.sid", "the checkpoint's sid is the grant's", (c, x, f) =>
            Field(c, "sid") == f.Session.Id ? null : $"{x.Description}: the checkpoint's sid is {Field(c, "sid")}, expected the grant's {f.Session.Id}");
        yield return new("checkpoint.version", "a new session's first checkpoint has ver=1, and each change adds 1", async ct =>
        {
            var first = await FirstAsync(ct);
            var one = Probe.ReadLoosely(first.First);
            var two = Probe.ReadLoosely(first.Second);
            return one?.Version != 1 ? $"the first change of a new session (grant ver=0) was checkpointed with ver={(one is null ? "(none)" : Field(one, "ver"))}, expected 1"
                : two?.Version != 2 ? $"the change under a grant of ver=1 was checkpointed with ver={(two is null ? "(none)" : Field(two, "ver"))}, expected 2"
                : null;
        });
        yield return EachCheckpoint("checkpoint.epoch", "the checkpoint's epoch is the grant's", (c, x, _) =>
            c.Epoch == FirstEpoch ? null : $"{x.Description}: the checkpoint's epoch is {Field(c, "epoch")}, expected the grant's {FirstEpoch}");
        yield return EachCheckpoint("checkpoint.digest", "len and sha256 describe the state at the start of the body", (c, x, _) =>
            c.Length is not { } len ? $"{x.Description}: the checkpoint's len is {Field(c, "len")}, but the body has only {x.Body.Length} bytes"
            : Ids.Sha256(c.State) != Field(c, "sha256") ? $"{x.Description}: the SHA-256 of the body's first {len} bytes is {Ids.Sha256(c.State)}, but the checkpoint says {Field(c, "sha256")}"
            : null);
        yield return EachCheckpoint("checkpoint.incarnation", "the checkpoint's inc is the response's Baton-Incarnation", (c, x, _) =>
            x.Single(ProtocolConstants.IncarnationHeader) is { } inc && inc == Field(c, "inc") ? null
            : $"{x.Description}: the checkpoint's inc is {Field(c, "inc")}, but Baton-Incarnation is {x.Single(ProtocolConstants.IncarnationHeader) ?? "(absent or repeated)"}");
        yield return new("checkpoint.read-only", "a request that changes nothing is answered without a checkpoint", async ct =>
        {
            var read = (await FirstAsync(ct)).Read;
            return !read.Answered || read.Status is < 200 or > 299
                ? $"a read under the newest version was {read.Outcome}, expected 2xx {Probe.Said(read)}".TrimEnd()
                : read.Has(ProtocolConstants.CheckpointHeader)
                    ? $"a read under the newest version was answered with a checkpoint ({read.All(ProtocolConstants.CheckpointHeader)[0]}), expected none"
                    : null;
        });
    }

    private Task<FirstChanges> FirstAsync(CancellationToken cancellationToken) => _first ??= MakeFirstAsync(cancellationToken);

    private async Task<FirstChanges> MakeFirstAsync(CancellationToken cancellationToken)
    {
        var session = new KitSession(Ids.New(), FirstEpoch);
        var first = await probe.CallAsync(Options.ChangeRoute, probe.Grant(session), FirstChangeWhat, cancellationToken);
        session.Version = Probe.ReadLoosely(first)?.Version ?? 1;
        var second = await probe.CallAsync(Options.ChangeRoute, probe.Grant(session), "the session's second change", cancellationToken);
        session.Version = Probe.ReadLoosely(second)?.Version ?? 2;
        var read = await probe.CallAsync(Options.ReadRoute, probe.Grant(session), "a read at the newest version", cancellationToken);
        return new FirstChanges(session, first, second, read);
    }

    /// <summary>A rule checked on both changes' checkpoints, each read loosely (so only the field it names is judged).</summary>
    private Rule EachCheckpoint(string id, string title, Func<LooseCheckpoint, Exchange, FirstChanges, string?> check)
        => new(id, title, async ct =>
        {
            var first = await FirstAsync(ct);
            foreach (var exchange in new[] { first.First, first.Second })
            {
                if (Probe.ReadLoosely(exchange) is not { } checkpoint)
                {
                    return $"{exchange.Description} was {exchange.Outcome} without a {ProtocolConstants.CheckpointHeader}";
                }

                if (check(checkpoint, exchange, first) is { } failure)
                {
                    return failure;
                }
            }

            return null;
        });

    private string? Present(Exchange exchange, string what)
    {
        if (!exchange.Answered || exchange.Status is < 200 or > 299)
        {
            return $"{what} was {exchange.Outcome}, expected 2xx {Probe.Said(exchange)}".TrimEnd();
        }

        var headers = exchange.All(ProtocolConstants.CheckpointHeader);
        if (headers.Count != 1)
        {
            return $"{what} was answered with {headers.Count} {ProtocolConstants.CheckpointHeader} headers, expected one";
        }

        if (!headers[0].StartsWith("v=2;", StringComparison.Ordinal))
        {
            return $"{what}'s checkpoint is not v=2: {headers[0]}";
        }

        var verdict = CheckpointDescriptor.TryParse(headers[0], probe.Keys, out _);
        return verdict is ProtocolVerdict.Valid or ProtocolVerdict.BadSignature ? null : $"{what}'s checkpoint is {verdict.ToString().ToLowerInvariant()}: {headers[0]}";
    }

    private string? Signed(Exchange exchange, string what)
    {
        if (exchange.Single(ProtocolConstants.CheckpointHeader) is not { } header)
        {
            return $"{what} was {exchange.Outcome} without a single {ProtocolConstants.CheckpointHeader}";
        }

        var verdict = CheckpointDescriptor.TryParse(header, probe.Keys, out _);
        if (verdict == ProtocolVerdict.Valid)
        {
            return null;
        }

        if (verdict != ProtocolVerdict.BadSignature)
        {
            return $"{what}'s checkpoint is {verdict.ToString().ToLowerInvariant()}, so its MAC cannot be checked: {header}";
        }

        // Say which key it was made with, when it was one of the secret's other keys.
        var c = Probe.ReadLoosely(exchange)!;
        var canonical = new StringBuilder("checkpoint\n2");
        foreach (var key in new[] { "sid", "ver", "epoch", "len", "sha256", "inc" })
        {
            canonical.Append('\n').Append(Field(c, key));
        }

        foreach (var purpose in new[] { "grant", "restore", "action", "cookie" })
        {
            if (probe.MacWithPurpose(purpose, canonical.ToString()) == Field(c, "mac"))
            {
                return $"{what}'s checkpoint MAC was made with the {purpose} key, not the checkpoint key";
            }
        }

        return $"{what}'s checkpoint MAC does not hold with the checkpoint key of this secret";
    }

    private IEnumerable<Rule> MacRules()
    {
        yield return new("mac.grant-other-purpose", "a grant MACed with the restore key (not the grant key) is refused 401", async ct =>
        {
            var grant = new SessionGrant(Ids.New(), 0, 0, 20 * 60 * 1000, 1024 * 1024, Probe.Now());
            var canonical = FormattableString.Invariant($"grant\n1\n{grant.SessionId}\n{grant.Version}\n{grant.Epoch}\n{grant.TtlMilliseconds}\n{grant.MaxStateBytes}\n{grant.Timestamp}");
            var header = ReplaceMac(grant.Format(probe.Keys), probe.MacWithPurpose("restore", canonical));
            var exchange = await probe.CallAsync(Options.ChangeRoute, header, "a grant MACed with the restore key", ct);
            return Expect(exchange, 401, "a grant MACed with the restore key");
        });
        yield return new("mac.restore-other-purpose", "a restore MACed with the grant key (not the restore key) is refused 401", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            var restore = probe.RestoreFor(Ids.New(), 1, 1, state);
            var canonical = FormattableString.Invariant($"restore\n1\n{restore.SessionId}\n{restore.Version}\n{restore.Epoch}\n{restore.Length}\n{restore.Sha256}\n{restore.Target}\n{restore.Timestamp}\n{restore.Nonce}");
            var header = ReplaceMac(restore.Format(probe.Keys), probe.MacWithPurpose("grant", canonical));
            return Expect(await RestoreRefusalAsync(header, state, "a restore MACed with the grant key", ct), 401, "a restore MACed with the grant key");
        });
    }

    private static string ReplaceMac(string header, string mac) => header[..(header.LastIndexOf("mac=", StringComparison.Ordinal) + 4)] + mac;

    private IEnumerable<Rule> StaleRules()
    {
        yield return new("stale.no-copy", "a grant of ver above 0 for a session the backend does not hold is refused 409 with Baton-Stale: have=0", async ct =>
        {
            var exchange = await probe.CallAsync(Options.ChangeRoute, probe.Grant(Ids.New(), 3, 0), "ver=3 for a session it never saw", ct);
            return Expect(exchange, 409, "a grant of ver=3 for a session the backend never saw") ?? StaleHave(exchange, 0);
        });
        yield return new("stale.higher-version", "a grant of ver above the backend's copy is refused 409 with Baton-Stale: have=<its version>", async ct =>
        {
            var session = await probe.NewSessionAsync(0, 1, "a session at ver=1", ct);
            var exchange = await probe.CallAsync(Options.ChangeRoute, probe.Grant(session.Id, session.Version + 1, 0), "ver one above the backend's copy", ct);
            return Expect(exchange, 409, $"a grant of ver={session.Version + 1} for a copy at ver={session.Version}") ?? StaleHave(exchange, session.Version);
        });
        yield return new("stale.app-not-run", "a request refused as stale does not run the app: the session is unchanged afterwards", async ct =>
        {
            var session = await probe.NewSessionAsync(0, 1, "a session at ver=1", ct);
            var before = await ReadServedAsync(session, "before the stale grant", ct);
            await probe.CallAsync(Options.ChangeRoute, probe.Grant(session.Id, session.Version + 1, 0), "ver one above the backend's copy", ct);
            return await UnchangedAsync(session, before, "after a change refused as stale", ct);
        });
        yield return new("stale.other-epoch", "a grant of another epoch than the backend's copy (later or earlier) is refused 409", async ct =>
        {
            var session = await probe.NewSessionAsync(5, 1, "a session of epoch 5", ct);
            foreach (var epoch in new long[] { 6, 4 })
            {
                var exchange = await probe.CallAsync(Options.ReadRoute, probe.Grant(session.Id, session.Version, epoch), FormattableString.Invariant($"epoch {epoch} for a copy of epoch 5"), ct);
                if (Expect(exchange, 409, FormattableString.Invariant($"a grant of epoch {epoch} for a copy of epoch 5")) is { } failure)
                {
                    return failure;
                }
            }

            return null;
        });
    }

    private static string? StaleHave(Exchange exchange, long have)
    {
        var expected = "have=" + Probe.Number(have);
        var header = exchange.Single(ProtocolConstants.StaleHeader);
        return header == expected ? null : $"the 409 carried {ProtocolConstants.StaleHeader}: {header ?? "(absent or repeated)"}, expected {expected}";
    }

    /// <summary>A read of the session at its version, which must be served without a checkpoint; a precondition.</summary>
    private async Task<Exchange> ReadServedAsync(KitSession session, string when, CancellationToken cancellationToken)
    {
        var read = await probe.CallAsync(Options.ReadRoute, probe.Grant(session), "a read " + when, cancellationToken);
        if (!read.Answered || read.Status is < 200 or > 299)
        {
            throw new PreconditionException($"a read of a session at its own version {when} was {read.Outcome}, expected 2xx {Probe.Said(read)}".TrimEnd());
        }

        return read;
    }

    /// <summary>Null when a read now answers as <paramref name="before"/> did and no hidden change rides with it.</summary>
    private async Task<string?> UnchangedAsync(KitSession session, Exchange before, string when, CancellationToken cancellationToken, int max = 1024 * 1024)
    {
        var after = await probe.CallAsync(Options.ReadRoute, probe.Grant(session, max), "a read " + when, cancellationToken);
        if (!after.Answered || after.Status is < 200 or > 299)
        {
            return $"a read at the session's version {when} was {after.Outcome}, expected 2xx {Probe.Said(after)}".TrimEnd();
        }

        if (Probe.ReadLoosely(after) is { } checkpoint)
        {
            return $"a read {when} carried a checkpoint of ver={Field(checkpoint, "ver")}: the refused request's change was kept";
        }

        return after.Body.AsSpan().SequenceEqual(before.Body)
            ? null
            : $"a read {when} answered '{after.BodyText()}', before it answered '{before.BodyText()}'";
    }
}
