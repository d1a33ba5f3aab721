using Baton.Protocol;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Baton.Backend;

/// <summary>
/// <c>POST /_baton/restore</c>: installs a session's state sent by the gateway. Accepted only when the
/// MAC holds, it names this process's incarnation, its timestamp is within the clock skew, its nonce is
/// new, the body is exactly the state it describes, and the session was not rotated away from or ended
/// here. Everything else is refused with a clear status.
/// </summary>
internal sealed class RestoreEndpoint(
    BackendSessionStore store,
    BackendIdentity identity,
    ReplayGuard replays,
    RetiredSessions retired,
    IOptions<BatonBackendOptions> options,
    TimeProvider time,
    BackendMetrics metrics,
    ILogger<RestoreEndpoint> logger)
{
    public async Task HandleAsync(HttpContext context)
    {
        var limits = options.Value.Backend;
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            // The gateway asks which process answers with a GET (every answer names the incarnation):
            // an ordinary question, not a refused restore, so it is neither counted nor warned about.
            context.Response.Headers.Allow = "POST";
            await Refusal.WriteAsync(context, StatusCodes.Status405MethodNotAllowed, "Restores are POSTed.");
            return;
        }

        var values = context.Request.Headers[ProtocolConstants.RestoreHeader];
        var verdict = RestoreDescriptor.TryParse(values.Count == 1 ? values[0] : null, identity.Keys, out var restore);
        if (verdict != ProtocolVerdict.Valid)
        {
            var (status, reason) = verdict switch
            {
                ProtocolVerdict.BadSignature => (StatusCodes.Status401Unauthorized, "bad_signature"),
                ProtocolVerdict.Missing => (StatusCodes.Status401Unauthorized, "missing"),
                ProtocolVerdict.UnsupportedVersion => (StatusCodes.Status400BadRequest, "unsupported_version"),
                _ => (StatusCodes.Status400BadRequest, "malformed"),
            };
            await RefuseAsync(context, status, reason, $"The {ProtocolConstants.RestoreHeader} header is {reason.Replace('_', ' ')}.");
            return;
        }

        if (!string.Equals(restore!.Target, identity.Incarnation, StringComparison.Ordinal))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, "wrong_target", "The restore is for another backend process.");
            return;
        }

        if (!ProtocolTime.IsFresh(restore.Timestamp, time, limits.ClockSkew))
        {
            await RefuseAsync(context, StatusCodes.Status401Unauthorized, "expired", $"The restore's timestamp is outside the clock skew ({limits.ClockSkew}).");
            return;
        }

        if (restore.Length > limits.MaxStateBytes)
        {
            await RefuseAsync(context, StatusCodes.Status413PayloadTooLarge, "too_large", $"The state is {restore.Length} bytes, over Baton:Backend:MaxStateBytes ({limits.MaxStateBytes}).");
            return;
        }

        switch (replays.Remember(restore.Nonce, restore.Timestamp))
        {
            case ReplayGuard.Outcome.Replayed:
                await RefuseAsync(context, StatusCodes.Status409Conflict, "replayed", "This restore was already used.");
                return;
            case ReplayGuard.Outcome.Full:
                await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "replay_guard_full", "Too many recent restores (Baton:Backend:MaxRememberedRestores).");
                return;
        }

        var state = await ReadBodyAsync(context.Request, restore.Length, context.RequestAborted);
        if (state is null || Ids.Sha256(state) != restore.Sha256 || !KeyedState.TryDecode(state, out var data))
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, "bad_body", "The body is not the state the restore header describes.");
            return;
        }

        if (retired.IsRetired(restore.SessionId))
        {
            // A response of this backend rotated the session away from this id or ended it: the id stays dead here,
            // whoever asks (a gateway that has not heard yet, or a replay of the session's last state).
            await RefuseAsync(context, StatusCodes.Status410Gone, "retired", "This session was renewed or ended on this backend; it is not restored.");
            return;
        }

        var entry = store.GetOrAdd(restore.SessionId, (long)limits.LocalIdleTimeout.TotalMilliseconds);
        if (entry is null)
        {
            await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "memory_full", "This backend holds its most sessions (Baton:Backend:MaxSessions).");
            return;
        }

        if (!await entry.Lock.WaitAsync(limits.SessionLockTimeout, context.RequestAborted))
        {
            await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "session_busy", "The session is busy.");
            return;
        }

        try
        {
            // A restore from a later epoch (the session moved since this copy was made) always wins.
            if (!entry.IsFresh && (restore.Epoch < entry.Epoch || (restore.Epoch == entry.Epoch && restore.Version < entry.Version)))
            {
                await RefuseAsync(context, StatusCodes.Status409Conflict, "older_than_held", $"This backend holds version {entry.Version} of epoch {entry.Epoch}, newer than version {restore.Version} of epoch {restore.Epoch}.");
                return;
            }

            if (!store.TryResize(entry, restore.Length))
            {
                await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "memory_full", "This backend holds its most session state (Baton:Backend:MaxTotalStateBytes).");
                return;
            }

            entry.Install(data, restore.Version, restore.Epoch);
        }
        finally
        {
            entry.Lock.Release();

            // A refused restore of a new session leaves no empty entry holding a place.
            store.ForgetIfUnused(restore.SessionId, entry);
        }

        metrics.RestoreAccepted();
        Log.SessionRestored(logger, Ids.LogHash(restore.SessionId), restore.Version, restore.Length);
        context.Response.Headers[ProtocolConstants.IncarnationHeader] = identity.Incarnation;
        context.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int length, CancellationToken cancellationToken)
    {
        if (request.ContentLength is { } declared && declared != length)
        {
            return null;
        }

        var state = new byte[length];
        var read = await request.Body.ReadAtLeastAsync(state, length, throwOnEndOfStream: false, cancellationToken);
        if (read != length)
        {
            return null;
        }

        // Nothing may follow the state.
        var extra = new byte[1];
        return await request.Body.ReadAsync(extra, cancellationToken) == 0 ? state : null;
    }

    private async Task RefuseAsync(HttpContext context, int status, string reason, string detail)
    {
        metrics.Refused("restore_" + reason);
        Log.RestoreRefused(logger, reason, detail);
        await Refusal.WriteAsync(context, status, detail);
    }
}
