using System.Globalization;
using Baton.Protocol;

namespace Baton.Conformance;

internal sealed partial class RuleBook
{
    // The largest state the kit's grants let a backend store (Probe.Grant's default max).
    private const int GrantMax = 1024 * 1024;

    private Task<DeltaBase>? _deltaBase;

    /// <summary>A change offered deltas: the version its grant named, the answer, and a read of the session just after it.</summary>
    private sealed record DeltaStep(long GrantVersion, Exchange Change, Exchange ReadAfter);

    /// <summary>
    /// A session changed under grants offering deltas — its first change (ver=0); after a grow not offered them, a change
    /// at its version; and one granted the version before, as a request that waited behind the last — with the whole
    /// state the kit holds for each version, as a gateway folds them.
    /// </summary>
    private sealed record DeltaBase(KitSession Session, IReadOnlyList<DeltaStep> Offered, IReadOnlyDictionary<long, byte[]> States);

    private IEnumerable<Rule> DeltaRules()
    {
        yield return new("delta.only-when-offered", "a request without Baton-Deltas is never answered with a delta (v=3)", async ct =>
        {
            await DeltaBaseAsync(ct);
            var unasked = probe.Exchanges.FirstOrDefault(e => !e.OfferedDeltas && IsDelta(e));
            return unasked is null ? null
                : $"{unasked.Description} carried no {ProtocolConstants.DeltasHeader} but was answered with a delta: {unasked.Single(ProtocolConstants.CheckpointHeader)}";
        });
        yield return new("delta.base", "a delta's base is the grant's ver (so a grant of ver=0 never gets one)", async ct =>
        {
            foreach (var step in Deltas(await DeltaBaseAsync(ct)))
            {
                var checkpoint = Probe.ReadLoosely(step.Change)!;
                if (Field(checkpoint, "base") != Probe.Number(step.GrantVersion))
                {
                    return $"{step.Change.Description}: the delta's base is {Field(checkpoint, "base")}, expected the grant's ver={step.GrantVersion}";
                }
            }

            return null;
        });
        yield return new("delta.wellformed", "a delta is a well-formed v=3 checkpoint: MAC, the grant's sid and epoch, len and sha256 of the body's start, a well-formed delta, size within the grant's max", async ct =>
        {
            var b = await DeltaBaseAsync(ct);
            return Deltas(b).Select(step => DeltaDefect(step, b.Session)).FirstOrDefault(defect => defect is not null);
        });
        yield return new("delta.applies", "a delta applied onto the state at its base gives exactly size bytes, and that state restored is served as the session was", async ct =>
        {
            var b = await DeltaBaseAsync(ct);

            // Deltas with another base or a defect fail the rules above; this one judges what they carry.
            foreach (var step in Deltas(b).Where(s => DeltaDefect(s, b.Session) is null))
            {
                var delta = Probe.ReadLoosely(step.Change)!;
                CheckpointDescriptor.TryParse(step.Change.Single(ProtocolConstants.CheckpointHeader), probe.Keys, out var checkpoint);
                if (checkpoint!.Base != step.GrantVersion)
                {
                    continue;
                }

                var what = $"{step.Change.Description}'s delta";
                if (!b.States.TryGetValue(step.GrantVersion, out var atBase))
                {
                    return $"{what} cannot be applied: the kit holds no whole state of ver={step.GrantVersion}";
                }

                if (!KeyedState.TryApply(atBase, delta.State, out var folded))
                {
                    return $"{what} cannot be applied: the state of ver={step.GrantVersion} the backend sent ({atBase.Length} bytes) is not in the keyed format";
                }

                if (folded.Length != checkpoint.StateSize)
                {
                    return $"{what}, applied onto the state of ver={step.GrantVersion}, gives {folded.Length} bytes, but its size is {checkpoint.StateSize}";
                }

                var restore = probe.RestoreFor(Ids.New(), checkpoint.Version, 1, folded);
                var restored = await probe.RestoreAsync(restore.Format(probe.Keys), folded, FormattableString.Invariant($"the folded state of ver={checkpoint.Version} under a new id"), ct);
                if (Expect(restored, 204, FormattableString.Invariant($"a restore of the state {what} folds to (ver={checkpoint.Version})")) is { } refused)
                {
                    return refused;
                }

                var copy = new KitSession(restore.SessionId, restore.Epoch) { Version = restore.Version };
                if (await UnchangedAsync(copy, step.ReadAfter, FormattableString.Invariant($"of the state {what} folds to, restored, compared with the session at ver={checkpoint.Version}"), ct) is { } failure)
                {
                    return failure;
                }
            }

            return null;
        });
    }

    private static bool IsDelta(Exchange exchange)
        => exchange.Single(ProtocolConstants.CheckpointHeader)?.StartsWith("v=3;", StringComparison.Ordinal) == true;

    private static IEnumerable<DeltaStep> Deltas(DeltaBase b) => b.Offered.Where(step => IsDelta(step.Change));

    /// <summary>Null when the step's delta checkpoint is well-formed in every way but its base; else what is wrong.</summary>
    private string? DeltaDefect(DeltaStep step, KitSession session)
    {
        var exchange = step.Change;
        var header = exchange.Single(ProtocolConstants.CheckpointHeader)!;
        var verdict = CheckpointDescriptor.TryParse(header, probe.Keys, out var checkpoint);
        if (verdict != ProtocolVerdict.Valid)
        {
            return $"{exchange.Description}'s delta checkpoint is {verdict.ToString().ToLowerInvariant()}: {header}";
        }

        if (checkpoint!.SessionId != session.Id || checkpoint.Epoch != session.Epoch)
        {
            return $"{exchange.Description}'s delta is for sid {checkpoint.SessionId}, epoch {checkpoint.Epoch}, expected the grant's {session.Id}, epoch {session.Epoch}";
        }

        if (checkpoint.Length > exchange.Body.Length)
        {
            return $"{exchange.Description}: the delta's len is {checkpoint.Length}, but the body has only {exchange.Body.Length} bytes";
        }

        var delta = exchange.Body.AsSpan(0, checkpoint.Length);
        if (Ids.Sha256(delta) != checkpoint.Sha256)
        {
            return $"{exchange.Description}: the SHA-256 of the body's first {checkpoint.Length} bytes is {Ids.Sha256(delta)}, but the delta checkpoint says {checkpoint.Sha256}";
        }

        if (!KeyedState.IsValidDelta(delta))
        {
            return $"{exchange.Description}: the body's first {checkpoint.Length} bytes are not a well-formed delta (format byte 2, then each key once, in ordinal order)";
        }

        return checkpoint.StateSize > GrantMax
            ? $"{exchange.Description}: the delta's size is {checkpoint.StateSize}, over the grant's max={GrantMax}"
            : null;
    }

    private Task<DeltaBase> DeltaBaseAsync(CancellationToken cancellationToken) => _deltaBase ??= MakeDeltaBaseAsync(cancellationToken);

    private async Task<DeltaBase> MakeDeltaBaseAsync(CancellationToken cancellationToken)
    {
        var session = new KitSession(Ids.New(), 0);
        var states = new Dictionary<long, byte[]>();
        var offered = new List<DeltaStep> { await DeltaStepAsync(session, 0, "a first change, offered deltas", states, cancellationToken) };

        // A key of some size the next changes leave alone, so a delta of them is worth sending.
        var grow = await probe.CallAsync(Options.GrowBy(Math.Min(2048, (Options.MaxStateBytes ?? GrantMax) / 4)), probe.Grant(session), "growing the session, deltas not offered", cancellationToken);
        TakeState(session, grow, states);

        offered.Add(await DeltaStepAsync(session, session.Version, "a change offered deltas", states, cancellationToken));
        offered.Add(await DeltaStepAsync(session, session.Version - 1, "a change granted the version before, offered deltas", states, cancellationToken));
        return new DeltaBase(session, offered, states);
    }

    private async Task<DeltaStep> DeltaStepAsync(KitSession session, long grantVersion, string what, Dictionary<long, byte[]> states, CancellationToken cancellationToken)
    {
        var change = await probe.CallAsync(Options.ChangeRoute, probe.Grant(session.Id, grantVersion, session.Epoch), what, cancellationToken, offerDeltas: true);
        TakeState(session, change, states);
        var read = await ReadServedAsync(session, "after " + what, cancellationToken);
        return new DeltaStep(grantVersion, change, read);
    }

    /// <summary>
    /// The checkpoint's version and whole state, as a gateway stores it: a delta folded onto the state of its base
    /// (when the kit holds that and the delta applies); a precondition for the next step.
    /// </summary>
    private static void TakeState(KitSession session, Exchange exchange, Dictionary<long, byte[]> states)
    {
        if (!exchange.Answered || exchange.Status is < 200 or > 299)
        {
            throw new PreconditionException($"{exchange.Description} was {exchange.Outcome}, expected 2xx {Probe.Said(exchange)}".TrimEnd());
        }

        if (Probe.ReadLoosely(exchange) is not { Length: not null, Version: { } version } checkpoint)
        {
            throw new PreconditionException($"{exchange.Description} made no readable {ProtocolConstants.CheckpointHeader} (it is '{exchange.Single(ProtocolConstants.CheckpointHeader) ?? "absent"}')");
        }

        byte[]? whole = checkpoint.State;
        if (IsDelta(exchange))
        {
            whole = long.TryParse(Field(checkpoint, "base"), NumberStyles.None, CultureInfo.InvariantCulture, out var deltaBase)
                && states.TryGetValue(deltaBase, out var atBase) && KeyedState.TryApply(atBase, checkpoint.State, out var folded)
                ? folded
                : null;
        }

        if (whole is not null)
        {
            states[version] = whole;
        }

        session.Version = version;
        session.State = whole ?? [];
    }
}
