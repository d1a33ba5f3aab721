using System.Collections.Concurrent;
using System.Globalization;
using Baton.Backend;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Conformance;

/// <summary>One protocol rule a <see cref="BrokenBackend"/> breaks.</summary>
public enum Breakage
{
    None,
    ServesMalformedGrantsAsLocal,
    AcceptsUnsupportedGrantVersion,
    AcceptsRepeatedAndUnknownGrantKeys,
    AcceptsNonCanonicalSid,
    AcceptsBadGrantMac,
    AcceptsGrantOutsideSkew,
    GrantRefusalsNotPlainText,
    CheckpointsRequestsWithoutGrant,
    CheckpointWithBadMac,
    CheckpointMacWithGrantKey,
    CheckpointOfAnotherSid,
    CheckpointOfAnotherEpoch,
    CheckpointWithWrongDigest,
    DropsIncarnationOnAppResponses,
    IgnoresStaleness,
    IgnoresEpoch,
    StaleWithWrongHave,
    OversizedChangeAnswered200,
    IgnoresGrantMax,
    RestoreAcceptsAnyMethod,
    RestoreMissingAnswered400,
    AcceptsBadRestoreMac,
    IgnoresRestoreTarget,
    AcceptsRestoreOutsideSkew,
    AcceptsReplayedRestore,
    IgnoresRestoreDigest,
    AcceptsUnreadableState,
    AcceptsOlderEpochRestore,
    AcceptsLowerVersionRestore,
    SessionActionWithBadMac,
    RestoreGetNotAnswered405,
    VersionsOffByAThousand,
    CheckpointsReads,
    RefusesEmptyRestore,
    RestoreAcceptedWithoutIncarnation,
    KeepsHigherVersionOverLaterEpoch,
    RestoreMalformedAnswered401,
    AcceptsUnsupportedRestoreVersion,
    RestoreLengthCheckedAfterBody,
    AnswersWrongLengthRestores204,
    RestoreRefusalsNotPlainText,
    ShrinksGrantMax,
    RetiredAnsweredStale,
    AcceptsRestoreOfRetiredSession,
    SendsDeltasUnasked,
    DeltaBaseOffByOne,
    DeltaWithWrongDigest,
    MalformedDelta,
    DeltaWithWrongSize,
    DeltaOfWrongValues,
}

/// <summary>
/// The real DemoBackend (in-process, loopback) with one tampering step in front of its Baton library that
/// breaks exactly one protocol rule, chosen by <see cref="Current"/> and switchable between runs. The step
/// re-signs what it rewrites with the shared secret, so the library sees well-signed messages and only the
/// broken rule shows. It keeps a ledger of the versions and epochs it saw the backend hold, so it can make
/// the library serve a copy it should have refused, and of the states it saw, so it can turn the library's whole states
/// into deltas (the library under it is set to send none of its own, so each breakage rewrites whole states alone) and
/// break those.
/// </summary>
public sealed class BrokenBackend : IAsyncLifetime
{
    private static readonly ProtocolKeys Keys = new(TestGateway.Secret);
    private static readonly ProtocolKeys OtherKeys = new(TestGateway.Secret + "-other");

    // How far VersionsOffByAThousand shifts the versions it sends.
    private const long Offset = 1000;
    private readonly ConcurrentDictionary<string, (long Version, long Epoch)> _ledger = new(StringComparer.Ordinal);

    // The whole states the library's checkpoints carried, by session, epoch and version: what deltas are made from.
    private readonly ConcurrentDictionary<(string Sid, long Epoch, long Version), byte[]> _states = new();

    // The sessions a response rotated or ended, as the backend's session actions named them.
    private readonly ConcurrentDictionary<string, byte> _retired = new(StringComparer.Ordinal);
    private TestBackend? _backend;

    /// <summary>What the backend gets wrong now.</summary>
    public Breakage Current { get; set; }

    public Uri Address => _backend!.Address;

    public async Task InitializeAsync()
        => _backend = await TestBackend.StartAsync("conformance", ["--Baton:Backend:SendDeltas=false"], BackendHook.Before(TamperAsync));

    public async Task DisposeAsync()
    {
        if (_backend is not null)
        {
            await _backend.DisposeAsync();
        }
    }

    private async Task TamperAsync(HttpContext context, RequestDelegate next)
    {
        var breakage = Current;
        var request = context.Request;
        var response = context.Response;
        var isRestore = request.Path.Equals(ProtocolConstants.RestorePath, StringComparison.OrdinalIgnoreCase);
        var grant = request.Headers[ProtocolConstants.SessionHeader].ToString();
        if (isRestore)
        {
            if (await TamperRestoreAsync(context, breakage))
            {
                return;
            }
        }
        else if (grant.Length > 0)
        {
            if (TamperGrant(grant, breakage) is { } tampered)
            {
                request.Headers[ProtocolConstants.SessionHeader] = tampered;
            }
            else
            {
                request.Headers.Remove(ProtocolConstants.SessionHeader);
            }
        }

        response.OnStarting(() =>
        {
            TamperResponse(context, breakage, isRestore, hasGrant: grant.Length > 0);
            return Task.CompletedTask;
        });

        if (breakage is >= Breakage.SendsDeltasUnasked and <= Breakage.DeltaOfWrongValues && !isRestore && SessionGrant.TryParse(grant, Keys, out var granted) == ProtocolVerdict.Valid)
        {
            // Held back until the app is done, so the library's whole state can be swapped for a delta of it.
            var body = response.Body;
            using var held = new MemoryStream();
            response.Body = held;
            try
            {
                await next(context);
            }
            finally
            {
                response.Body = body;
            }

            var rewritten = AsDelta(context, breakage, granted!, held.ToArray());
            if (rewritten.Length > 0)
            {
                await response.Body.WriteAsync(rewritten, context.RequestAborted);
            }
        }
        else
        {
            await next(context);
        }

        Learn(context, isRestore);
    }

    // The body, its whole state replaced by a delta of the changes since the grant's version (broken as the breakage says)
    // when the response is checkpointed, the breakage sends deltas for this request, and the state at that version is known.
    private byte[] AsDelta(HttpContext context, Breakage breakage, SessionGrant grant, byte[] body)
    {
        var headers = context.Response.Headers;
        if (CheckpointDescriptor.TryParse(headers[ProtocolConstants.CheckpointHeader].ToString(), Keys, out var made) != ProtocolVerdict.Valid
            || made!.IsDelta || made.Length > body.Length)
        {
            return body;
        }

        var state = body[..made.Length];
        _states[(made.SessionId, made.Epoch ?? 0, made.Version)] = state;
        var offered = context.Request.Headers[ProtocolConstants.DeltasHeader] == "1";
        var sends = breakage == Breakage.SendsDeltasUnasked
            ? !offered && context.Request.Path.StartsWithSegments("/blob", StringComparison.OrdinalIgnoreCase)
            : offered && (breakage != Breakage.DeltaBaseOffByOne || grant.Version >= 2);
        if (!sends || grant.Version < 1
            || !_states.TryGetValue((made.SessionId, made.Epoch ?? 0, grant.Version), out var atBase)
            || !KeyedState.TryDecode(atBase, out var before) || !KeyedState.TryDecode(state, out var after))
        {
            return body;
        }

        var changes = after.Where(entry => !before.TryGetValue(entry.Key, out var old) || !old.AsSpan().SequenceEqual(entry.Value))
            .Select(entry => KeyValuePair.Create(entry.Key, (byte[]?)(breakage == Breakage.DeltaOfWrongValues && entry.Value.Length > 0
                ? [.. entry.Value[..^1], (byte)(entry.Value[^1] ^ 1)]
                : entry.Value)))
            .Concat(before.Keys.Where(key => !after.ContainsKey(key)).Select(key => KeyValuePair.Create(key, (byte[]?)null)));
        if (KeyedState.EncodeDelta(changes) is not { } delta)
        {
            return body;
        }

        // A malformed delta: the whole state (format byte 1) sent as one.
        var lead = breakage == Breakage.MalformedDelta ? state : delta;
        headers[ProtocolConstants.CheckpointHeader] = (made with
        {
            Base = breakage == Breakage.DeltaBaseOffByOne ? grant.Version - 1 : grant.Version,
            Length = lead.Length,
            Sha256 = Ids.Sha256(breakage == Breakage.DeltaWithWrongDigest ? [.. lead, 0] : lead),
            StateSize = state.Length + (breakage == Breakage.DeltaWithWrongSize ? 1 : 0),
        }).Format(Keys);
        byte[] rewritten = [.. lead, .. body[made.Length..]];
        context.Response.ContentLength = rewritten.Length;
        return rewritten;
    }

    // The grant the library gets; null for none.
    private string? TamperGrant(string header, Breakage breakage)
    {
        var fields = Fields(header);
        var verdict = SessionGrant.TryParse(header, Keys, out var valid);
        switch (breakage)
        {
            case Breakage.ServesMalformedGrantsAsLocal when verdict == ProtocolVerdict.Malformed:
                return null;
            case Breakage.AcceptsUnsupportedGrantVersion:
                return header.Replace("v=7;", "v=1;", StringComparison.Ordinal);
            case Breakage.AcceptsRepeatedAndUnknownGrantKeys when verdict == ProtocolVerdict.Malformed && fields.ContainsKey("mac"):
                return string.Join("; ", fields.Where(f => f.Key is not "foo").Select(f => f.Key + "=" + f.Value));
            case Breakage.AcceptsNonCanonicalSid when verdict == ProtocolVerdict.Malformed && GrantOf(fields) is { } odd && odd.SessionId.Length == ProtocolConstants.IdLength && !Ids.IsValidId(odd.SessionId):
                // The last of 22 characters carries 2 bits: clearing its low 4 gives the canonical spelling of the same bytes.
                const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                var index = Alphabet.IndexOf(odd.SessionId[^1], StringComparison.Ordinal);
                return index < 0 ? header : (odd with { SessionId = odd.SessionId[..^1] + Alphabet[index & ~0xF] }).Format(Keys);
            case Breakage.AcceptsBadGrantMac when verdict == ProtocolVerdict.BadSignature && GrantOf(fields) is { } forged:
                return forged.Format(Keys);
            case Breakage.AcceptsGrantOutsideSkew when valid is not null && Math.Abs(ProtocolTime.Now(TimeProvider.System) - valid.Timestamp) > 60_000:
                return (valid with { Timestamp = ProtocolTime.Now(TimeProvider.System) }).Format(Keys);
            case Breakage.IgnoresStaleness when valid is not null:
                return (_ledger.TryGetValue(valid.SessionId, out var held)
                    ? valid with { Version = held.Version, Epoch = held.Epoch }
                    : valid with { Version = 0 }).Format(Keys);
            case Breakage.IgnoresEpoch when valid is not null && _ledger.TryGetValue(valid.SessionId, out var copy):
                return (valid with { Epoch = copy.Epoch }).Format(Keys);
            case Breakage.VersionsOffByAThousand when valid is not null && valid.Version >= Offset:
                return (valid with { Version = valid.Version - Offset }).Format(Keys);
            case Breakage.ShrinksGrantMax when valid is not null && valid.MaxStateBytes < 1024 * 1024:
                return (valid with { MaxStateBytes = 64 }).Format(Keys);
            case Breakage.IgnoresGrantMax when valid is not null:
                return (valid with { MaxStateBytes = int.MaxValue }).Format(Keys);
            default:
                return header;
        }
    }

    // True when the tamper answered the request itself.
    private async Task<bool> TamperRestoreAsync(HttpContext context, Breakage breakage)
    {
        var request = context.Request;
        var header = request.Headers[ProtocolConstants.RestoreHeader].ToString();
        var verdict = RestoreDescriptor.TryParse(header, Keys, out var valid);
        var fields = Fields(header);
        var now = ProtocolTime.Now(TimeProvider.System);
        switch (breakage)
        {
            case Breakage.RestoreAcceptsAnyMethod when !HttpMethods.IsGet(request.Method):
                request.Method = HttpMethods.Post;
                break;
            case Breakage.RestoreMissingAnswered400 when header.Length == 0 && HttpMethods.IsPost(request.Method):
                context.Response.StatusCode = StatusCodes.Status400BadRequest;
                context.Response.Headers[ProtocolConstants.IncarnationHeader] = Incarnation(context);
                context.Response.ContentType = "text/plain";
                await context.Response.WriteAsync("No restore header.");
                return true;
            case Breakage.RestoreGetNotAnswered405 when HttpMethods.IsGet(request.Method):
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return true;
            case Breakage.AcceptsRestoreOfRetiredSession when valid is not null && _retired.ContainsKey(valid.SessionId):
                // Answered as taken, as a library without a memory of retired ids would: the state is not installed here,
                // but the gateway would send the session's requests on.
                context.Response.StatusCode = StatusCodes.Status204NoContent;
                context.Response.Headers[ProtocolConstants.IncarnationHeader] = Incarnation(context);
                return true;
            case Breakage.RefusesEmptyRestore when valid is { Length: 0 }:
                await AnswerAsync(context, StatusCodes.Status400BadRequest, "Empty states are not restored.");
                return true;
            case Breakage.KeepsHigherVersionOverLaterEpoch when valid is not null && _ledger.TryGetValue(valid.SessionId, out var held) && valid.Epoch > held.Epoch && valid.Version < held.Version:
                await AnswerAsync(context, StatusCodes.Status409Conflict, "A higher version is held.");
                return true;
            case Breakage.RestoreMalformedAnswered401 when verdict == ProtocolVerdict.Malformed:
                await AnswerAsync(context, StatusCodes.Status401Unauthorized, "Not a restore.");
                return true;
            case Breakage.AcceptsUnsupportedRestoreVersion when header.StartsWith("v=7;", StringComparison.Ordinal):
                request.Headers[ProtocolConstants.RestoreHeader] = "v=1;" + header[4..];
                break;
            case Breakage.RestoreLengthCheckedAfterBody when valid is not null && valid.Length > 1024 * 1024 && Math.Abs(now - valid.Timestamp) <= 60_000:
                await AnswerAsync(context, StatusCodes.Status400BadRequest, "The body is not the state the header describes.");
                return true;
            case Breakage.AnswersWrongLengthRestores204 when valid is { Length: <= 1024 * 1024 } && Math.Abs(now - valid.Timestamp) <= 60_000 && (await ReadBodyAsync(request)).Length != valid.Length:
                context.Response.StatusCode = StatusCodes.Status204NoContent;
                context.Response.Headers[ProtocolConstants.IncarnationHeader] = Incarnation(context);
                return true;
            case Breakage.AcceptsBadRestoreMac when verdict == ProtocolVerdict.BadSignature && RestoreOf(fields) is { } forged:
                request.Headers[ProtocolConstants.RestoreHeader] = forged.Format(Keys);
                break;
            case Breakage.IgnoresRestoreTarget when valid is not null:
                request.Headers[ProtocolConstants.RestoreHeader] = (valid with { Target = Incarnation(context) }).Format(Keys);
                break;
            case Breakage.AcceptsRestoreOutsideSkew when valid is not null && Math.Abs(now - valid.Timestamp) > 60_000:
                request.Headers[ProtocolConstants.RestoreHeader] = (valid with { Timestamp = now }).Format(Keys);
                break;
            case Breakage.AcceptsReplayedRestore when valid is not null:
                request.Headers[ProtocolConstants.RestoreHeader] = (valid with { Nonce = Ids.New() }).Format(Keys);
                break;
            case Breakage.IgnoresRestoreDigest when valid is not null:
                var body = await ReadBodyAsync(request);
                if (body.Length == valid.Length)
                {
                    request.Headers[ProtocolConstants.RestoreHeader] = (valid with { Sha256 = Ids.Sha256(body) }).Format(Keys);
                }

                break;
            case Breakage.AcceptsUnreadableState when valid is not null:
                var state = await ReadBodyAsync(request);
                if (state.Length > 0 && state[0] != 1 && Ids.Sha256(state) == valid.Sha256)
                {
                    // Installs an empty state where the garbage could not be read.
                    request.Headers[ProtocolConstants.RestoreHeader] = (valid with { Length = 0, Sha256 = Ids.Sha256([]) }).Format(Keys);
                    request.Body = new MemoryStream();
                    request.ContentLength = 0;
                }

                break;
            case Breakage.AcceptsOlderEpochRestore when valid is not null && _ledger.TryGetValue(valid.SessionId, out var later) && valid.Epoch < later.Epoch:
                request.Headers[ProtocolConstants.RestoreHeader] = (valid with { Epoch = later.Epoch }).Format(Keys);
                break;
            case Breakage.AcceptsLowerVersionRestore when valid is not null && _ledger.TryGetValue(valid.SessionId, out var higher) && valid.Epoch == higher.Epoch && valid.Version < higher.Version:
                request.Headers[ProtocolConstants.RestoreHeader] = (valid with { Version = higher.Version }).Format(Keys);
                break;
        }

        return false;
    }

    private static void TamperResponse(HttpContext context, Breakage breakage, bool isRestore, bool hasGrant)
    {
        var response = context.Response;
        var headers = response.Headers;
        var checkpoint = headers[ProtocolConstants.CheckpointHeader].ToString();
        CheckpointDescriptor.TryParse(checkpoint, Keys, out var made);
        switch (breakage)
        {
            case Breakage.GrantRefusalsNotPlainText when hasGrant && response.StatusCode is 400 or 401:
                response.ContentType = "application/octet-stream";
                break;
            case Breakage.CheckpointsRequestsWithoutGrant when !hasGrant && !isRestore:
                headers[ProtocolConstants.CheckpointHeader] = new CheckpointDescriptor(Ids.New(), 1, 0, 0, Ids.Sha256([]), Incarnation(context)).Format(Keys);
                break;
            case Breakage.VersionsOffByAThousand when made is not null:
                headers[ProtocolConstants.CheckpointHeader] = (made with { Version = made.Version + Offset }).Format(Keys);
                break;
            case Breakage.VersionsOffByAThousand when headers[ProtocolConstants.StaleHeader].ToString() is { Length: > 5 } stale
                && long.TryParse(stale.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var have) && have > 0:
                headers[ProtocolConstants.StaleHeader] = "have=" + (have + Offset).ToString(CultureInfo.InvariantCulture);
                break;
            case Breakage.CheckpointsReads when hasGrant && made is null && HttpMethods.IsGet(context.Request.Method) && response.StatusCode == StatusCodes.Status200OK
                && SessionGrant.TryParse(context.Request.Headers[ProtocolConstants.SessionHeader].ToString(), Keys, out var read) == ProtocolVerdict.Valid && read!.Version > 0:
                // The version the gateway already holds, again, with an empty state (the body stays the app's).
                headers[ProtocolConstants.CheckpointHeader] = new CheckpointDescriptor(read.SessionId, read.Version, read.Epoch, 0, Ids.Sha256([]), Incarnation(context)).Format(Keys);
                break;
            case Breakage.RestoreAcceptedWithoutIncarnation when isRestore && response.StatusCode == StatusCodes.Status204NoContent:
                headers.Remove(ProtocolConstants.IncarnationHeader);
                break;
            case Breakage.RestoreRefusalsNotPlainText when isRestore && response.StatusCode >= 400:
                response.ContentType = "application/json";
                break;
            case Breakage.CheckpointWithBadMac when made is not null:
                headers[ProtocolConstants.CheckpointHeader] = made.Format(OtherKeys);
                break;
            case Breakage.CheckpointMacWithGrantKey when made is not null:
                var canonical = made.Canonical();
                headers[ProtocolConstants.CheckpointHeader] = checkpoint[..(checkpoint.LastIndexOf("mac=", StringComparison.Ordinal) + 4)]
                    + System.Buffers.Text.Base64Url.EncodeToString(System.Security.Cryptography.HMACSHA256.HashData(Keys.Grant, System.Text.Encoding.UTF8.GetBytes(canonical)));
                break;
            case Breakage.CheckpointOfAnotherSid when made is not null:
                headers[ProtocolConstants.CheckpointHeader] = (made with { SessionId = Ids.New() }).Format(Keys);
                break;
            case Breakage.CheckpointOfAnotherEpoch when made is not null:
                headers[ProtocolConstants.CheckpointHeader] = (made with { Epoch = made.Epoch + 1 }).Format(Keys);
                break;
            case Breakage.CheckpointWithWrongDigest when made is not null:
                headers[ProtocolConstants.CheckpointHeader] = (made with { Sha256 = Ids.Sha256([1, 2, 3]) }).Format(Keys);
                break;
            case Breakage.DropsIncarnationOnAppResponses when hasGrant:
                headers.Remove(ProtocolConstants.IncarnationHeader);
                break;
            case Breakage.RetiredAnsweredStale when response.StatusCode == StatusCodes.Status410Gone && headers.ContainsKey(ProtocolConstants.RetiredHeader):
                // What a library that only drops the copy answers: a stale copy, which the gateway restores.
                response.StatusCode = StatusCodes.Status409Conflict;
                headers.Remove(ProtocolConstants.RetiredHeader);
                headers[ProtocolConstants.StaleHeader] = "have=0";
                break;
            case Breakage.StaleWithWrongHave when headers.ContainsKey(ProtocolConstants.StaleHeader):
                headers[ProtocolConstants.StaleHeader] = "have=0";
                break;
            case Breakage.OversizedChangeAnswered200 when hasGrant && response.StatusCode == StatusCodes.Status413PayloadTooLarge:
                response.StatusCode = StatusCodes.Status200OK;
                break;
            case Breakage.SessionActionWithBadMac when headers[ProtocolConstants.SessionActionHeader].ToString() is { Length: > 0 } action
                && SessionAction.TryParse(action, Keys, out var signed) == ProtocolVerdict.Valid:
                headers[ProtocolConstants.SessionActionHeader] = signed!.Format(OtherKeys);
                break;
        }
    }

    // What the backend holds now, as its answers show: a checkpoint's version and epoch, or an accepted restore's.
    private void Learn(HttpContext context, bool isRestore)
    {
        var response = context.Response;
        if (isRestore)
        {
            if (response.StatusCode == StatusCodes.Status204NoContent
                && RestoreDescriptor.TryParse(context.Request.Headers[ProtocolConstants.RestoreHeader].ToString(), Keys, out var restore) == ProtocolVerdict.Valid)
            {
                _ledger[restore!.SessionId] = (restore.Version, restore.Epoch);
            }

            return;
        }

        if (CheckpointDescriptor.TryParse(response.Headers[ProtocolConstants.CheckpointHeader].ToString(), Keys, out var checkpoint) == ProtocolVerdict.Valid)
        {
            _ledger[checkpoint!.SessionId] = (checkpoint.Version, checkpoint.Epoch ?? 0);
        }

        if (SessionAction.TryParse(response.Headers[ProtocolConstants.SessionActionHeader].ToString(), Keys, out var action) == ProtocolVerdict.Valid)
        {
            _retired[action!.SessionId] = 0;
        }
    }

    private static async Task AnswerAsync(HttpContext context, int status, string reason)
    {
        context.Response.StatusCode = status;
        context.Response.Headers[ProtocolConstants.IncarnationHeader] = Incarnation(context);
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(reason);
    }

    private static string Incarnation(HttpContext context) => context.RequestServices.GetRequiredService<BackendIdentity>().Incarnation;

    private static async Task<byte[]> ReadBodyAsync(HttpRequest request)
    {
        using var copy = new MemoryStream();
        await request.Body.CopyToAsync(copy);
        var body = copy.ToArray();
        request.Body = new MemoryStream(body);
        return body;
    }

    private static Dictionary<string, string> Fields(string header)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in header.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var pair = part.Split('=', 2);
            if (pair.Length == 2)
            {
                fields.TryAdd(pair[0], pair[1]);
            }
        }

        return fields;
    }

    private static long? Number(Dictionary<string, string> fields, string key)
        => fields.TryGetValue(key, out var text) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;

    private static SessionGrant? GrantOf(Dictionary<string, string> f)
        => f.TryGetValue("sid", out var sid) && Number(f, "ver") is { } ver && Number(f, "epoch") is { } epoch && Number(f, "ttl") is { } ttl
           && Number(f, "max") is { } max && Number(f, "ts") is { } ts
            ? new SessionGrant(sid, ver, epoch, ttl, (int)Math.Min(max, int.MaxValue), ts)
            : null;

    private static RestoreDescriptor? RestoreOf(Dictionary<string, string> f)
        => f.TryGetValue("sid", out var sid) && Number(f, "ver") is { } ver && Number(f, "epoch") is { } epoch && Number(f, "len") is { } len
           && f.TryGetValue("sha256", out var sha) && f.TryGetValue("target", out var target) && Number(f, "ts") is { } ts && f.TryGetValue("nonce", out var nonce)
            ? new RestoreDescriptor(sid, ver, epoch, (int)Math.Min(len, int.MaxValue), sha, target, ts, nonce)
            : null;
}
