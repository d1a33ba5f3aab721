using Baton.Gateway.Sessions;
using Baton.Protocol;
using FsCheck;
using FsCheck.Fluent;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Configuration;

namespace Baton.Tests.Protocol;

/// <summary>
/// Property-based fuzzing of everything the gateway and the library parse from the other side or from
/// clients: the grant, checkpoint, restore and session-action headers, the session cookie and the Cookie
/// header it is read from. Inputs are valid messages and the committed corpus (<c>Protocol/Corpus</c>),
/// mutated (characters replaced, inserted, deleted, segments duplicated, swapped, spliced, truncated,
/// repeated). Every parser must return a verdict for every input without throwing, and a mutation must
/// never yield a valid message other than one that was signed: the MACs allow no forgery. Cases per parser:
/// <c>BATON_FUZZ_CASES</c> (default 100,000, a few seconds each; raise it for a long local run).
/// </summary>
[Trait("Category", "Unit")]
public sealed class ParserFuzzTests
{
    private const string Secret = "fuzz-secret-0123456789abcdef0123456789abcdef";
    private static readonly ProtocolKeys Keys = new(Secret);
    private static readonly int Cases = int.TryParse(Environment.GetEnvironmentVariable("BATON_FUZZ_CASES"), out var cases) && cases > 0 ? cases : 100_000;
    private static readonly string[] Snippets = [";", "=", " ", "; ", "v=1", "v=2", "sid=", "mac=", "ver=", "epoch=", "len=", "\0", "\u00e9", "\u0661", "-", "+", "0", "9223372036854775808", "%", "\"", ",", "\r\n", "=="];

    private static readonly SessionGrant[] Grants =
    [
        new(Ids.New(), 0, 0, 1_200_000, 1_048_576, 1_767_225_600_000),
        new(Ids.New(), 41, 3, 1, 0, 0),
    ];

    private static readonly CheckpointDescriptor[] Checkpoints =
    [
        new(Ids.New(), 1, 0, 0, Ids.Sha256([]), Ids.New()),
        new(Ids.New(), 7, null, 3, Ids.Sha256([1, 2, 3]), Ids.New()),
        new(Ids.New(), 12, 4, 3, Ids.Sha256([2, 0, 0]), Ids.New(), Base: 11, StateSize: 70_000),
    ];

    private static readonly RestoreDescriptor[] Restores = [new(Ids.New(), 5, 2, 3, Ids.Sha256([1, 2, 3]), Ids.New(), 1_767_225_600_000, Ids.New())];

    private static readonly SessionAction[] Actions = [new(Ids.New(), SessionActionKind.Rotate), new(Ids.New(), SessionActionKind.End)];

    private static readonly SessionCookie Cookie = new(Keys);
    private static readonly SessionId[] CookieIds = [SessionId.New(), SessionId.New()];
    private static readonly SessionAffinityConfig Affinity = new() { Enabled = true, Policy = "Baton", AffinityKeyName = "baton.sid" };

    [Fact]
    public void GrantHeaders_NeverThrow_AndParseOnlyWhatTheyFormat() => Fuzz("grant", Grants.Select(g => g.Format(Keys)), input =>
    {
        var verdict = SessionGrant.TryParse(input, Keys, out var grant);
        return verdict != ProtocolVerdict.Valid || Grants.Contains(grant);
    });

    [Fact]
    public void CheckpointHeaders_NeverThrow_AndParseOnlyWhatTheyFormat() => Fuzz("checkpoint", Checkpoints.Select(c => c.Format(Keys)), input =>
    {
        var verdict = CheckpointDescriptor.TryParse(input, Keys, out var checkpoint);
        return verdict != ProtocolVerdict.Valid || Checkpoints.Contains(checkpoint);
    });

    [Fact]
    public void RestoreHeaders_NeverThrow_AndParseOnlyWhatTheyFormat() => Fuzz("restore", Restores.Select(r => r.Format(Keys)), input =>
    {
        var verdict = RestoreDescriptor.TryParse(input, Keys, out var restore);
        return verdict != ProtocolVerdict.Valid || Restores.Contains(restore);
    });

    [Fact]
    public void SessionActionHeaders_NeverThrow_AndParseOnlyWhatTheyFormat() => Fuzz("action", Actions.Select(a => a.Format(Keys)), input =>
    {
        var verdict = SessionAction.TryParse(input, Keys, out var action);
        return verdict != ProtocolVerdict.Valid || Actions.Contains(action);
    });

    [Fact]
    public void SessionCookieValues_NeverThrow_AndParseOnlyWhatTheyFormat() => Fuzz("cookie", CookieIds.Select(Cookie.Protect), input =>
    {
        var verdict = Cookie.Unprotect(input, out var id);
        return verdict != CookieVerdict.Valid || CookieIds.Contains(id);
    });

    [Fact]
    public void CookieHeaders_NeverThrow_AndReadOnlyWhatTheyCarry() => Fuzz("cookie-header", CookieIds.Select(id => $"a=1; baton.sid={Cookie.Protect(id)}; b=2"), input =>
    {
        var context = new DefaultHttpContext();
        context.Request.Headers.Cookie = input;
        var verdict = Cookie.Read(context.Request, Affinity, out var id);
        return verdict != CookieVerdict.Valid || CookieIds.Contains(id);
    });

    // Every seed as it is, then Cases mutations of them; a failure names the input (and FsCheck's seed to replay it).
    private static void Fuzz(string corpus, IEnumerable<string> valid, Func<string, bool> holds)
    {
        var seeds = valid.Concat(File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Protocol", "Corpus", corpus + ".txt"))).ToArray();
        foreach (var seed in seeds)
        {
            Assert.True(holds(seed), $"the {corpus} parser fails on the seed '{seed}'");
        }

        Check.One(Config.QuickThrowOnFailure.WithMaxTest(Cases).WithQuietOnSuccess(true), Prop.ForAll(Arb.From(Mutated(seeds)), holds));
    }

    private static Gen<string> Mutated(string[] seeds) =>
        from seed in Gen.Elements(seeds)
        from other in Gen.Elements(seeds)
        from count in Gen.Choose(1, 8)
        from steps in Gen.ArrayOf(Step, count)
        select steps.Aggregate(seed, (text, step) => Apply(text, other, step));

    private static Gen<(int Kind, int At, int Length, int Pick)> Step =>
        from kind in Gen.Choose(0, 8)
        from at in Gen.Choose(0, 10_000)
        from length in Gen.Choose(0, 64)
        from pick in Gen.Choose(0, 10_000)
        select (kind, at, length, pick);

    private static string Apply(string text, string other, (int Kind, int At, int Length, int Pick) step)
    {
        var at = text.Length == 0 ? 0 : step.At % (text.Length + 1);
        var length = Math.Min(step.Length, text.Length - at);
        var snippet = Snippets[step.Pick % Snippets.Length];
        var segments = text.Split(';');
        return step.Kind switch
        {
            0 when at < text.Length => string.Concat(text.AsSpan(0, at), ((char)(step.Pick % 0x2500)).ToString(), text.AsSpan(at + 1)),
            1 => text.Insert(at, snippet),
            2 => text.Remove(at, length),
            3 => text[..at],
            4 => string.Join(';', segments.Append(segments[step.Pick % segments.Length])),
            5 when segments.Length > 1 => string.Join(';', segments.Select((s, i) => i == step.Pick % segments.Length ? segments[(i + 1) % segments.Length] : i == (step.Pick + 1) % segments.Length ? segments[step.Pick % segments.Length] : s)),
            6 => string.Concat(text.AsSpan(0, at), other.AsSpan(Math.Min(other.Length, step.Pick % (other.Length + 1)))),
            7 => string.Concat(Enumerable.Repeat(text.Length == 0 ? snippet : text.Substring(at, length), 1 + (step.Pick % 200))),
            8 => text.Insert(at, snippet.Length == 0 ? " " : new string(snippet[0], 1 + (step.Length % 4))),
            _ => text,
        };
    }
}
