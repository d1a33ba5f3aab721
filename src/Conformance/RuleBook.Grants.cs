using Baton.Protocol;

namespace Baton.Conformance;

/// <summary>
/// The protocol's rules, as the gateway sees them (docs/protocol.md). Each rule works on sessions of its
/// own, so one broken behaviour fails its own rule and not the next; rules that look at the same exchange
/// share it.
/// </summary>
internal sealed partial class RuleBook(Probe probe)
{
    private readonly List<Exchange> _grantRefusals = [];
    private readonly List<Exchange> _restoreRefusals = [];
    private Task<FirstChanges>? _first;

    private ConformanceOptions Options => probe.Options;

    /// <summary>Every rule, grouped by area, in the order they run.</summary>
    public IReadOnlyList<Rule> All() =>
    [
        .. GrantRules(),
        .. CheckpointRules(),
        .. MacRules(),
        .. StaleRules(),
        .. RestoreRules(),
        .. SizeRules(),
        .. ActionRules(),
        .. RetiredRules(),
        .. DeltaRules(),
        .. IncarnationRules(),
    ];

    private IEnumerable<Rule> GrantRules()
    {
        yield return new("grant.none", "a request without a grant is served, without a checkpoint or session action", GrantNoneAsync);
        yield return GrantRefused("grant.malformed", "a malformed grant is refused 400", 400,
            () => "v=1; sid=not-an-id; ver=zero", "a malformed grant");
        yield return GrantRefused("grant.unsupported-version", "a grant of an unsupported v is refused 400", 400,
            () => probe.Grant(Ids.New(), 0, 0).Replace("v=1;", "v=7;", StringComparison.Ordinal), "a grant with v=7");
        yield return GrantRefused("grant.missing-key", "a grant without one of its keys (ttl) is refused 400", 400,
            () => DropKey(probe.Grant(Ids.New(), 0, 0), "ttl"), "a grant without ttl");
        yield return GrantRefused("grant.duplicate-key", "a grant with a repeated key is refused 400", 400,
            () => probe.Grant(Ids.New(), 0, 0) + "; ver=0", "a grant with ver twice");
        yield return GrantRefused("grant.unknown-key", "a grant with an unknown key is refused 400", 400,
            () => probe.Grant(Ids.New(), 0, 0) + "; foo=1", "a grant with an unknown key");
        yield return GrantRefused("grant.non-canonical-id", "a grant whose sid is not in canonical base64url is refused 400", 400,
            NonCanonicalSidGrant, "a grant with a non-canonical sid");
        yield return GrantRefused("grant.bad-mac", "a grant with a wrong MAC is refused 401", 401,
            () => probe.Grant(Ids.New(), 0, 0, keys: probe.WrongKeys), "a grant with a wrong MAC");
        yield return GrantRefused("grant.ts-past", "a grant whose ts is before the clock skew is refused 401", 401,
            () => probe.Grant(Ids.New(), 0, 0, timestamp: Probe.Now() - (long)Options.OutOfSkew.TotalMilliseconds), "a grant made a day ago");
        yield return GrantRefused("grant.ts-future", "a grant whose ts is past the clock skew is refused 401", 401,
            () => probe.Grant(Ids.New(), 0, 0, timestamp: Probe.Now() + (long)Options.OutOfSkew.TotalMilliseconds), "a grant made a day ahead");
        yield return new("grant.refusal-text", "every refused grant is answered with a plain-text reason", _ => Task.FromResult(PlainText(_grantRefusals, "refused grant")));
        yield return new("grant.adopts-epoch", "a new session at ver=0 adopts the grant's epoch and is served in it", GrantAdoptsEpochAsync);
    }

    private async Task<string?> GrantNoneAsync(CancellationToken cancellationToken)
    {
        var health = await probe.CallAsync(Options.HealthRoute, grant: null, "no grant", cancellationToken);
        if (!health.Answered || health.Status is < 200 or > 299)
        {
            return $"{health.Description} was {health.Outcome}, expected 2xx {Probe.Said(health)}".TrimEnd();
        }

        var change = await probe.CallAsync(Options.ChangeRoute, grant: null, "no grant", cancellationToken);
        if (!change.Answered || change.Status >= 400)
        {
            return $"{change.Description} was {change.Outcome}, expected it served {Probe.Said(change)}".TrimEnd();
        }

        foreach (var exchange in new[] { health, change })
        {
            foreach (var header in new[] { ProtocolConstants.CheckpointHeader, ProtocolConstants.SessionActionHeader, ProtocolConstants.StaleHeader })
            {
                if (exchange.Has(header))
                {
                    return $"{exchange.Description} was answered with {header}: {exchange.All(header)[0]}; a request without a grant is never checkpointed";
                }
            }
        }

        return null;
    }

    private Rule GrantRefused(string id, string title, int status, Func<string> header, string what)
        => new(id, title, async cancellationToken =>
        {
            var exchange = await probe.CallAsync(Options.ChangeRoute, header(), what, cancellationToken);
            if (exchange.Answered && exchange.Status is 400 or 401)
            {
                _grantRefusals.Add(exchange);
            }

            return Expect(exchange, status, what) ?? NoProtocolAnswer(exchange, what);
        });

    private async Task<string?> GrantAdoptsEpochAsync(CancellationToken cancellationToken)
    {
        var session = new KitSession(Ids.New(), epoch: 3);
        var change = await probe.CallAsync(Options.ChangeRoute, probe.Grant(session), "a new session at ver=0, epoch=3", cancellationToken);
        if (!change.Answered || change.Status is < 200 or > 299)
        {
            return $"a change of a new session at ver=0, epoch=3 was {change.Outcome}, expected 2xx {Probe.Said(change)}".TrimEnd();
        }

        if (Probe.ReadLoosely(change) is not { } checkpoint)
        {
            return "a change of a new session at ver=0, epoch=3 was answered without a checkpoint";
        }

        if (checkpoint.Epoch != 3)
        {
            return $"a change of a new session at ver=0, epoch=3 was checkpointed with epoch={Field(checkpoint, "epoch")}, expected the grant's epoch 3";
        }

        session.Version = checkpoint.Version ?? 1;
        var read = await probe.CallAsync(Options.ReadRoute, probe.Grant(session), "the adopted session, epoch=3", cancellationToken);
        return read.Answered && read.Status is >= 200 and <= 299
            ? null
            : $"a read of the new session under its adopted epoch 3 was {read.Outcome}, expected 2xx {Probe.Said(read)}".TrimEnd();
    }

    // A grant whose sid ends in a character with unused bits set: the same 16 bytes, not the one canonical spelling.
    private string NonCanonicalSidGrant()
    {
        const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        var sid = Ids.New();
        var last = Alphabet.IndexOf(sid[^1], StringComparison.Ordinal);
        var spelled = sid[..^1] + Alphabet[last | 1];
        return probe.Grant(spelled, 0, 0);
    }

    private static string DropKey(string header, string key)
        => string.Join("; ", header.Split("; ").Where(part => !part.StartsWith(key + "=", StringComparison.Ordinal)));

    /// <summary>Null when the exchange was answered <paramref name="status"/>; else the failure line.</summary>
    private static string? Expect(Exchange exchange, int status, string what)
        => exchange.Answered && exchange.Status == status
            ? null
            : $"{what} was {exchange.Outcome}, expected {status} {Probe.Said(exchange)}".TrimEnd();

    // A refusal is the library's own answer: it never carries a checkpoint.
    private static string? NoProtocolAnswer(Exchange exchange, string what)
        => exchange.Has(ProtocolConstants.CheckpointHeader) ? $"{what} was refused {exchange.Status} but carried a {ProtocolConstants.CheckpointHeader}" : null;

    private static string? PlainText(List<Exchange> refusals, string what)
    {
        if (refusals.Count == 0)
        {
            return $"no {what} was answered with a refusal to look at";
        }

        foreach (var refusal in refusals)
        {
            var type = refusal.Single("Content-Type");
            if (type is null || !type.StartsWith("text/plain", StringComparison.OrdinalIgnoreCase))
            {
                return $"{refusal.Description}: the {refusal.Status} refusal has Content-Type '{type ?? "none"}', expected text/plain";
            }

            if (refusal.BodyText().Length == 0)
            {
                return $"{refusal.Description}: the {refusal.Status} refusal has no reason in its body";
            }
        }

        return null;
    }

    private static string Field(LooseCheckpoint checkpoint, string key) => checkpoint.Fields.TryGetValue(key, out var value) ? value : "(absent)";
}
