using Baton.Protocol;

namespace Baton.Conformance;

internal sealed partial class RuleBook
{
    // Garbage no state format reads: not the .NET library's format byte, not UTF-8, not JSON.
    private static readonly byte[] Garbage = [0xFF, 0x00, 0xFE, 0x01, 0xFD, 0x80];

    // The sessions, versions and epochs of restores refused for sessions the backend never held: none may be installed.
    private readonly List<(string Sid, long Version, long Epoch)> _refusedFresh = [];
    private Task<RestoreBase>? _restoreBase;

    /// <summary>
    /// A session changed once on the backend (its state <see cref="State"/> at ver=1, read as <see cref="ReadAtOne"/>,
    /// and the app body its next change answered), then that state restored under a new id in epoch 1.
    /// </summary>
    private sealed record RestoreBase(byte[] State, Exchange ReadAtOne, byte[] NextChangeBody, string RestoredSid, string AcceptedHeader, Exchange Accepted);

    private IEnumerable<Rule> RestoreRules()
    {
        yield return new("restore.check", "the check restore (empty state, ver=0, epoch=0, len=0, fresh sid) is accepted 204", async ct =>
        {
            var restore = probe.RestoreFor(Ids.New(), 0, 0, []);
            var exchange = await probe.RestoreAsync(restore.Format(probe.Keys), [], "the check restore", ct);
            return Expect(exchange, 204, "the check restore");
        });
        yield return new("restore.accept", "a restore of a checkpointed state under a new epoch is accepted 204 with Baton-Incarnation", async ct =>
        {
            var accepted = (await RestoreBaseAsync(ct)).Accepted;
            return Expect(accepted, 204, "a restore of a checkpointed state")
                ?? (accepted.Single(ProtocolConstants.IncarnationHeader) == probe.Incarnation ? null
                    : $"the 204 carried Baton-Incarnation {accepted.Single(ProtocolConstants.IncarnationHeader) ?? "(absent or repeated)"}, expected {probe.Incarnation}");
        });
        yield return new("restore.serves-restored", "the next grant of the restored ver and epoch is served the restored state, and its change continues from it", async ct =>
        {
            var b = await RestoreBaseAsync(ct);
            var restored = new KitSession(b.RestoredSid, 1) { Version = 1 };
            if (await UnchangedAsync(restored, b.ReadAtOne, "of the restored session", ct) is { } failure)
            {
                return failure;
            }

            var change = await probe.CallAsync(Options.ChangeRoute, probe.Grant(restored), "a change of the restored session", ct);
            if (!change.Answered || change.Status is < 200 or > 299)
            {
                return $"a change of the restored session was {change.Outcome}, expected 2xx {Probe.Said(change)}".TrimEnd();
            }

            var checkpoint = Probe.ReadLoosely(change);
            return checkpoint is null ? "a change of the restored session was answered without a checkpoint"
                : checkpoint.Version != 2 || checkpoint.Epoch != 1 ? $"a change of the restored session (ver=1, epoch=1) was checkpointed as ver={Field(checkpoint, "ver")}, epoch={Field(checkpoint, "epoch")}, expected ver=2, epoch=1"
                : !checkpoint.AppBody.AsSpan().SequenceEqual(b.NextChangeBody) ? $"a change of the restored session answered '{Text(checkpoint.AppBody)}', the same change of the original answered '{Text(b.NextChangeBody)}'"
                : null;
        });
        yield return new("restore.later-epoch-replaces", "a restore of a later epoch replaces the copy held, even one of a higher version", async ct =>
        {
            var session = new KitSession(Ids.New(), 0);
            await probe.ChangeAsync(session, "a session at ver=1", ct);
            var stateAtOne = session.State;
            var readAtOne = await ReadServedAsync(session, "at ver=1", ct);
            await probe.ChangeAsync(session, "a session at ver=2", ct);
            var restore = probe.RestoreFor(session.Id, 1, 1, stateAtOne);
            var exchange = await probe.RestoreAsync(restore.Format(probe.Keys), stateAtOne, "ver=1 of epoch 1 over a copy at ver=2 of epoch 0", ct);
            if (Expect(exchange, 204, "a restore of ver=1, epoch 1 over a copy at ver=2, epoch 0") is { } refused)
            {
                return refused;
            }

            return await UnchangedAsync(new KitSession(session.Id, 1) { Version = 1 }, readAtOne, "after the later epoch's restore", ct);
        });

        yield return new("restore.method", "a restore sent with another method than POST is refused 405", async ct =>
        {
            var (header, state) = await ValidRestoreAsync(ct);
            return Expect(await RestoreRefusalAsync(header, state, "PUT with a valid restore", ct, "PUT"), 405, "a valid restore sent with PUT");
        });
        yield return new("restore.missing", "a POST without Baton-Restore is refused 401", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            return Expect(await RestoreRefusalAsync(null, state, "no Baton-Restore", ct), 401, "a restore without its header");
        });
        yield return new("restore.malformed", "a malformed Baton-Restore is refused 400", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            return Expect(await RestoreRefusalAsync("v=1; sid=nonsense; len=-1", state, "a malformed header", ct), 400, "a malformed restore");
        });
        yield return new("restore.unsupported-version", "a Baton-Restore of an unsupported v is refused 400", async ct =>
        {
            var (header, state) = await ValidRestoreAsync(ct);
            return Expect(await RestoreRefusalAsync(header.Replace("v=1;", "v=7;", StringComparison.Ordinal), state, "v=7", ct), 400, "a restore with v=7");
        });
        yield return new("restore.bad-mac", "a restore with a wrong MAC is refused 401 (the MAC is checked before the target)", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            var header = probe.RestoreFor(Ids.New(), 1, 1, state, target: Ids.New()).Format(probe.WrongKeys);
            return Expect(await RestoreRefusalAsync(header, state, "a wrong MAC, another target", ct), 401, "a restore with a wrong MAC");
        });
        yield return new("restore.wrong-target", "a restore for another incarnation is refused 403 (the target is checked before ts)", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            var header = probe.RestoreFor(Ids.New(), 1, 1, state, target: Ids.New(), timestamp: Probe.Now() - (long)Options.OutOfSkew.TotalMilliseconds).Format(probe.Keys);
            return Expect(await RestoreRefusalAsync(header, state, "another incarnation, an old ts", ct), 403, "a restore for another incarnation");
        });
        yield return new("restore.ts-past", "a restore whose ts is before the clock skew is refused 401 (ts is checked before len)", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            var header = probe.RestoreFor(Ids.New(), 1, 1, state, timestamp: Probe.Now() - (long)Options.OutOfSkew.TotalMilliseconds, length: TooLarge).Format(probe.Keys);
            return Expect(await RestoreRefusalAsync(header, [], "made a day ago, len over the limit", ct), 401, "a restore made a day ago");
        });
        yield return new("restore.ts-future", "a restore whose ts is past the clock skew is refused 401", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            var header = probe.RestoreFor(Ids.New(), 1, 1, state, timestamp: Probe.Now() + (long)Options.OutOfSkew.TotalMilliseconds).Format(probe.Keys);
            return Expect(await RestoreRefusalAsync(header, state, "made a day ahead", ct), 401, "a restore made a day ahead");
        });
        yield return new("restore.too-large", "a restore whose len is over the backend's state limit is refused 413 (len is checked before the nonce)", async ct =>
        {
            var b = await RestoreBaseAsync(ct);
            var replayedNonce = Fields(b.AcceptedHeader)["nonce"];
            var restore = probe.RestoreFor(Ids.New(), 1, 1, b.State, length: TooLarge) with { Nonce = replayedNonce };
            return Expect(await RestoreRefusalAsync(restore.Format(probe.Keys), [], FormattableString.Invariant($"len={TooLarge}, a used nonce"), ct), 413, FormattableString.Invariant($"a restore of len={TooLarge}"));
        });
        yield return new("restore.replay", "a replayed restore (a nonce already used) is refused 409", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            var header = probe.RestoreFor(Ids.New(), 1, 1, state).Format(probe.Keys);
            var first = await probe.RestoreAsync(header, state, "a restore to replay", ct);
            if (Expect(first, 204, "a valid restore of a new session") is { } refused)
            {
                throw new PreconditionException(refused);
            }

            // The same restore again: accepted, it would install the same version, which is allowed; only its nonce is used.
            return Expect(await RestoreRefusalAsync(header, state, "the same restore again", ct, freshSession: false), 409, "a replayed restore");
        });
        yield return new("restore.body-short", "a restore whose body is shorter than len is refused 400", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            var header = probe.RestoreFor(Ids.New(), 1, 1, state).Format(probe.Keys);
            return Expect(await RestoreRefusalAsync(header, state[..^1], "a body one byte short", ct), 400, "a restore whose body is one byte short");
        });
        yield return new("restore.body-long", "a restore whose body is longer than len is refused 400", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            var header = probe.RestoreFor(Ids.New(), 1, 1, state).Format(probe.Keys);
            return Expect(await RestoreRefusalAsync(header, [.. state, 0x20], "a body one byte long", ct), 400, "a restore whose body is one byte long");
        });
        yield return new("restore.digest", "a restore whose body does not match sha256 is refused 400", async ct =>
        {
            var state = (await RestoreBaseAsync(ct)).State;
            var header = (probe.RestoreFor(Ids.New(), 1, 1, state) with { Sha256 = Ids.Sha256([.. state, 0x20]) }).Format(probe.Keys);
            return Expect(await RestoreRefusalAsync(header, state, "a body of another digest", ct), 400, "a restore whose body does not match its sha256");
        });
        yield return new("restore.unreadable-state", "a restore of bytes in no state format (garbage, len and sha256 right) is refused 400", async ct =>
        {
            var header = probe.RestoreFor(Ids.New(), 1, 1, Garbage).Format(probe.Keys);
            return Expect(await RestoreRefusalAsync(header, Garbage, "garbage bytes", ct), 400, "a restore of garbage bytes");
        });
        yield return new("restore.older-epoch", "a restore of an older epoch than the copy held is refused 409, whatever its version", async ct =>
        {
            var session = await probe.NewSessionAsync(2, 1, "a session of epoch 2", ct);
            var header = probe.RestoreFor(session.Id, session.Version + 5, 1, session.State).Format(probe.Keys);
            return Expect(await RestoreRefusalAsync(header, session.State, "epoch 1 over a copy of epoch 2", ct, freshSession: false), 409, "a restore of epoch 1 over a copy of epoch 2");
        });
        yield return new("restore.lower-version", "a restore of the same epoch and a lower version than the copy held is refused 409", async ct =>
        {
            var session = await probe.NewSessionAsync(0, 2, "a session at ver=2", ct);
            var header = probe.RestoreFor(session.Id, 1, 0, session.State).Format(probe.Keys);
            return Expect(await RestoreRefusalAsync(header, session.State, "ver=1 over a copy at ver=2", ct, freshSession: false), 409, "a restore of ver=1 over a copy at ver=2 of the same epoch");
        });
        yield return new("restore.refusal-text", "every refused restore is answered with a plain-text reason", _ => Task.FromResult(PlainText(_restoreRefusals, "refused restore")));
        yield return new("restore.refused-installs-nothing", "a refused restore installs nothing: its session is still unknown afterwards (409, have=0)", async ct =>
        {
            if (_refusedFresh.Count == 0)
            {
                return "no restore of a new session was refused, so none could be looked for";
            }

            foreach (var (sid, version, epoch) in _refusedFresh)
            {
                var exchange = await probe.CallAsync(Options.ReadRoute, probe.Grant(sid, Math.Max(version, 1), epoch), "a session only a refused restore was for", ct);
                if ((Expect(exchange, 409, FormattableString.Invariant($"a grant of ver={Math.Max(version, 1)}, epoch={epoch} for a session only a refused restore was for")) ?? StaleHave(exchange, 0)) is { } failure)
                {
                    return failure;
                }
            }

            return null;
        });
    }

    // Beyond the backend's own limit when it is known; else the largest len the protocol allows (31 bits).
    private int TooLarge => Options.MaxStateBytes is { } max && max < int.MaxValue ? max + 1 : int.MaxValue;

    private Task<RestoreBase> RestoreBaseAsync(CancellationToken cancellationToken) => _restoreBase ??= MakeRestoreBaseAsync(cancellationToken);

    private async Task<RestoreBase> MakeRestoreBaseAsync(CancellationToken cancellationToken)
    {
        var origin = new KitSession(Ids.New(), 0);
        await probe.ChangeAsync(origin, "the session whose state is restored", cancellationToken);
        var state = origin.State;
        if (state.Length == 0)
        {
            throw new PreconditionException($"{Options.ChangeRoute} left an empty state; the restore rules need a change that stores something");
        }

        var readAtOne = await ReadServedAsync(origin, "of the session whose state is restored", cancellationToken);
        var next = await probe.ChangeAsync(origin, "the original's next change", cancellationToken);
        var restoredSid = Ids.New();
        var header = probe.RestoreFor(restoredSid, 1, 1, state).Format(probe.Keys);
        var accepted = await probe.RestoreAsync(header, state, "a checkpointed state under a new id and epoch 1", cancellationToken);
        return new RestoreBase(state, readAtOne, Probe.ReadLoosely(next)!.AppBody, restoredSid, header, accepted);
    }

    private async Task<(string Header, byte[] State)> ValidRestoreAsync(CancellationToken cancellationToken)
    {
        var state = (await RestoreBaseAsync(cancellationToken)).State;
        return (probe.RestoreFor(Ids.New(), 1, 1, state).Format(probe.Keys), state);
    }

    private async Task<Exchange> RestoreRefusalAsync(string? header, byte[] body, string what, CancellationToken cancellationToken, string method = "POST", bool freshSession = true)
    {
        var exchange = await probe.RestoreAsync(header, body, what, cancellationToken, method);
        if (exchange.Answered && exchange.Status is >= 400 and < 500)
        {
            _restoreRefusals.Add(exchange);
            var fields = header is null ? [] : Fields(header);
            if (freshSession && fields.TryGetValue("sid", out var sid) && Ids.IsValidId(sid)
                && long.TryParse(fields.GetValueOrDefault("ver"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version)
                && long.TryParse(fields.GetValueOrDefault("epoch"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var epoch))
            {
                _refusedFresh.Add((sid, version, epoch));
            }
        }

        return exchange;
    }

    private static Dictionary<string, string> Fields(string header)
        => header.Split("; ").Select(part => part.Split('=', 2)).Where(pair => pair.Length == 2).ToDictionary(pair => pair[0], pair => pair[1], StringComparer.Ordinal);

    private static string Text(byte[] body)
    {
        var exchange = new Exchange(string.Empty) { Body = body };
        return exchange.BodyText();
    }
}
