using System.Diagnostics;
using Baton.Gateway.Configuration;
using Baton.Gateway.Destinations;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Baton.Protocol;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Model;
using Yarp.ReverseProxy.Transforms;

namespace Baton.Gateway.Checkpoints;

/// <summary>
/// Takes the checkpoint off the front of a backend's response body, checks it (signature, session,
/// size, digest), stores it in both tiers, and only then lets the response go to the client — without
/// the state and without any protocol header. A checkpoint that does not check out is never stored and
/// its response never released: the client gets 502 with a reason. A checkpoint that cannot be stored
/// gets 503 with <c>Retry-After</c>, whatever the store threw: that is the gateway's failure, never
/// the backend's. A checkpoint from an epoch the session has left (an old owner that finished late) is
/// fenced: never stored, its response never released as a success. Whenever a change is not stored, the
/// session's epoch advances, so the backend's memory of the change is not served again. Reading the state off the backend's response is the backend's side: an error there
/// is the destination's. A response carrying a session action (login, logout) has it take effect before anything is
/// stored (<see cref="SessionActions"/>): a login's state is stored under the session's new id alone, a logout's nowhere.
/// </summary>
internal sealed class CheckpointCaptureTransform(
    SessionStore store,
    ISessionPinTable pins,
    DestinationIncarnations incarnations,
    SessionActions actions,
    ProtocolKeys keys,
    IOptions<BatonOptions> options,
    TimeProvider time,
    BatonMetrics metrics,
    ILogger logger) : ResponseTransform
{
    private const string RenewedWhileRunning = "The session was renewed or ended while this request ran; nothing was changed. Retry shortly.";
    private const string AtLimit = "The gateway is at its session limit (Baton:Sessions:MaxSessions); the change was not made, retry shortly.";
    private const string AtBudget = "The gateway holds as much session state as it may (Baton:Sessions:MaxTotalStateBytes, Baton:Journal:MaxSizeBytes); the change was not made, retry shortly.";
    private readonly int _maxState = options.Value.Checkpoints.MaxStateBytes;

    // How long a change of a session that rotated meanwhile waits for the rotation to say whether it carried the change.
    private readonly TimeSpan _renamingWait = options.Value.Journal.CommandTimeout * 2;
    private int _warnedVersion1;

    public override async ValueTask ApplyAsync(ResponseTransformContext context)
    {
        var response = context.ProxyResponse;
        if (response is null)
        {
            return;
        }

        var http = context.HttpContext;
        var proxy = http.GetReverseProxyFeature();
        if (proxy.ProxiedDestination is { } served && response.Headers.TryGetValues(ProtocolConstants.IncarnationHeader, out var incarnation))
        {
            incarnations.Report(proxy.Cluster.Config.ClusterId, served.DestinationId, incarnation.First());
        }

        if (response.StatusCode == System.Net.HttpStatusCode.Conflict && response.Headers.Contains(ProtocolConstants.StaleHeader))
        {
            // The backend did not process the request; the failover step restores the session and resends.
            http.Features.Set(StaleSessionSignal.Instance);
            context.SuppressResponseBody = true;
            return;
        }

        var session = http.Features.Get<BatonSessionFeature>();
        if (response.StatusCode == System.Net.HttpStatusCode.Gone && session is not null && IsRetiredAnswer(response, session))
        {
            // The backend rotated this session away or ended it: the id is dead there, and the rotating response may not
            // even have reached this gateway yet (so the pin is left to it). Never restored anywhere; the failover step
            // answers that the session was renewed.
            http.Features.Set(RetiredSessionSignal.Instance);
            context.SuppressResponseBody = true;
            return;
        }

        // A login or logout takes effect before anything of its response is stored: from here the old id is dead.
        var hasCheckpoint = response.Headers.TryGetValues(ProtocolConstants.CheckpointHeader, out var values);
        var (actionRefused, pending) = await actions.BeginAsync(context, carriesState: hasCheckpoint);
        if (actionRefused)
        {
            return;
        }

        try
        {
            await CheckpointAsync(context, http, proxy, session, response, hasCheckpoint ? values! : [], pending);
        }
        catch when (pending is not null)
        {
            // Whatever escaped (the client gone, a broken read): the new id is dropped and the rename settled, so no
            // request waits on it and no half-made session stays; the old id is dead already.
            actions.Abandon(pending);
            throw;
        }
    }

    private async Task CheckpointAsync(ResponseTransformContext context, HttpContext http, IReverseProxyFeature proxy,
        BatonSessionFeature? session, HttpResponseMessage response, IEnumerable<string> values, PendingAction? pending)
    {
        var hasCheckpoint = values.Any();
        if (!hasCheckpoint)
        {
            if (pending is not null)
            {
                await actions.CompleteAsync(context, pending, stateCarried: false);
            }

            return;
        }

        var header = values.Count() == 1 ? values.First() : null;
        var verdict = CheckpointDescriptor.TryParse(header, keys, out var checkpoint);
        string? problem = verdict switch
        {
            ProtocolVerdict.Valid when session is null => "no session",
            ProtocolVerdict.Valid when checkpoint!.SessionId != session!.Id.Value => "another session's id",
            ProtocolVerdict.Valid when checkpoint!.Length > _maxState => $"{checkpoint.Length} bytes, over Baton:Checkpoints:MaxStateBytes ({_maxState})",
            ProtocolVerdict.Valid when checkpoint!.WholeSize > _maxState => $"a delta making {checkpoint.WholeSize} bytes of state, over Baton:Checkpoints:MaxStateBytes ({_maxState})",
            ProtocolVerdict.Valid when checkpoint!.IsDelta && !session!.DeltasOffered => "a delta this request did not offer to take",
            ProtocolVerdict.Valid when checkpoint!.IsDelta && pending is not null => "a delta with a session action (its state must be whole)",
            ProtocolVerdict.Valid => null,
            _ => verdict.ToString(),
        };

        byte[]? state = null;
        if (problem is null)
        {
            state = await ReadStateAsync(response, checkpoint!.Length, context.CancellationToken);
            if (state is null || Ids.Sha256(state) != checkpoint.Sha256)
            {
                problem = "body does not match its digest";
            }
            else if (checkpoint.IsDelta && !KeyedState.IsValidDelta(state))
            {
                problem = "a malformed delta";
            }
        }

        if (problem is not null)
        {
            metrics.CheckpointRejected();
            Log.CheckpointRejected(logger, session?.Id.Hash ?? "-", problem);
            if (pending is not null)
            {
                await actions.FailAsync(context, pending, StatusCodes.Status502BadGateway, "its checkpoint was invalid: " + problem, "The backend sent an invalid session checkpoint with its session action; the session was ended: sign in again.");
                return;
            }

            if (session is not null)
            {
                pins.AdvanceEpoch(session.Id);
            }

            await RefuseAsync(context, StatusCodes.Status502BadGateway, "The backend sent an invalid session checkpoint; the change was not saved.");
            return;
        }

        if (pending is { Kind: SessionActionKind.End })
        {
            // A logout's last state is stored nowhere: the session is gone.
            TrimState(http, checkpoint!);
            await actions.CompleteAsync(context, pending, stateCarried: false);
            return;
        }

        var owner = session!;

        // A login's state goes under the session's new id alone.
        var id = pending?.Renewed ?? owner.Id;
        var stored = state!;
        switch (pins.TryKeep(id, checkpoint!.WholeSize, checkpoint.Version, mayGrow: !store.IsFull))
        {
            case KeepOutcome.Kept:
                break;
            case KeepOutcome.Gone when pending is null:
                // The session was renewed or ended (login, logout) while this request ran: its change lives on only if
                // the login's state carried it.
                await ReleaseIfCarriedAsync(context, owner, checkpoint, checkpoint.Epoch ?? owner.Epoch);
                return;
            case KeepOutcome.Gone:
                await actions.FailAsync(context, pending, StatusCodes.Status503ServiceUnavailable, "the session was not in the pin table any more");
                return;
            case KeepOutcome.SessionLimit:
                // The session's first state would pass Baton:Sessions:MaxSessions: the change is not stored, and
                // a new epoch keeps the backend's copy from being served.
                metrics.SessionRefused("session_limit");
                Log.SessionCapacityReached(logger, pins.Count);
                if (pending is not null)
                {
                    await actions.FailAsync(context, pending, StatusCodes.Status503ServiceUnavailable, "Baton:Sessions:MaxSessions reached", AtLimit);
                    return;
                }

                pins.AdvanceEpoch(owner.Id);
                await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, AtLimit);
                return;
            default:
                // The state would grow the total past Baton:Sessions:MaxTotalStateBytes, or the journal past
                // Baton:Journal:MaxSizeBytes: not stored either.
                metrics.SessionRefused("state_budget");
                Log.StateBudgetReached(logger, owner.Id.Hash, stored.Length, pins.StateBytes);
                if (pending is not null)
                {
                    await actions.FailAsync(context, pending, StatusCodes.Status503ServiceUnavailable, "the state budget or the journal size reached", AtBudget);
                    return;
                }

                pins.AdvanceEpoch(owner.Id);
                await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, AtBudget);
                return;
        }

        if (checkpoint.Epoch is null && Interlocked.Exchange(ref _warnedVersion1, 1) == 0)
        {
            Log.CheckpointVersion1(logger, proxy.ProxiedDestination?.DestinationId ?? "-");
        }

        // A version 1 checkpoint names no epoch: it was made under the one this request was granted.
        var epoch = checkpoint.Epoch ?? owner.Epoch;
        var destination = proxy.ProxiedDestination?.DestinationId;
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var started = Stopwatch.GetTimestamp();
        using var span = BatonTelemetry.Source.StartActivity("baton.checkpoint");
        span?.SetTag("baton.session", id.Hash);
        span?.SetTag("baton.session.version", checkpoint.Version);
        span?.SetTag("baton.session.epoch", epoch);
        span?.SetTag("baton.checkpoint.size", stored.Length);
        span?.SetTag("baton.checkpoint.delta", checkpoint.IsDelta);
        SaveOutcome outcome;

        // What the tiers say of this write: one falling behind asks the session's next checkpoint whole, once this one is
        // counted; a stored delta's chain as they count it bounds the next offers.
        var report = new CheckpointReport();
        try
        {
            // The session moved on while this request ran here: the store would refuse it too. A session that
            // expired, ended or got a new id meanwhile takes nothing more under this id.
            var current = await pins.FindAsync(id, context.CancellationToken);
            if (current is null)
            {
                if (pending is not null)
                {
                    await actions.FailAsync(context, pending, StatusCodes.Status503ServiceUnavailable, "the session was not in the pin table any more");
                    return;
                }

                await ReleaseIfCarriedAsync(context, owner, checkpoint, epoch);
                return;
            }

            if (pending is not null)
            {
                // Every gateway loses the old id before the new one takes what the login made.
                await actions.EndOldIdAsync(pending);
            }

            outcome = current.Epoch > epoch
                ? SaveOutcome.Fenced
                : await store.SaveCheckpointAsync(
                    new SessionRecord(id.Value, destination, epoch, checkpoint.Version, stored, checkpoint.Sha256, now, store.ExpiryOf(now)) { DeltaBase = checkpoint.Base },
                    report);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            span?.SetStatus(ActivityStatusCode.Error, "not stored");
            if (report.TierBehind)
            {
                pins.RequireWhole(id);
            }

            metrics.CheckpointFailed();
            Log.CheckpointNotStored(logger, id.Hash, checkpoint.Version, ex.Message);
            if (pending is not null)
            {
                await actions.FailAsync(context, pending, StatusCodes.Status503ServiceUnavailable, "its state could not be stored: " + ex.Message);
                return;
            }

            // The backend holds the change in memory; a new epoch makes the next request restore the last stored state.
            pins.AdvanceEpoch(owner.Id);
            await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "The session change could not be stored, so it was not made; retry shortly.");
            return;
        }

        var named = outcome switch { SaveOutcome.Stored => "stored", SaveOutcome.Fenced => "fenced", SaveOutcome.Diverged => "diverged", _ => "stale" };
        span?.SetTag("baton.outcome", named);
        metrics.CheckpointCompleted(named, stored.Length, Stopwatch.GetElapsedTime(started), checkpoint.IsDelta);
        if (pending is not null)
        {
            if (outcome is not (SaveOutcome.Stored or SaveOutcome.Stale))
            {
                // The login ran on a copy the session has left (it moved meanwhile): its state is not the session's, and
                // the old id is dead already. Fail closed.
                Log.CheckpointFenced(logger, id.Hash, checkpoint.Version, epoch);
                await actions.FailAsync(context, pending, StatusCodes.Status503ServiceUnavailable, $"its state was not kept ({named})");
                return;
            }

            AttemptSignals.Stored(http);
            pins.RecordVersion(id, checkpoint.Version);
            pins.RecordChain(id, deltaBytes: null);
            if (report.TierBehind)
            {
                pins.RequireWhole(id);
            }

            if (await actions.CompleteAsync(context, pending, stateCarried: true))
            {
                TrimState(http, checkpoint);
            }

            return;
        }

        if (outcome == SaveOutcome.Stored && await pins.FindAsync(owner.Id, context.CancellationToken) is null)
        {
            AttemptSignals.Stored(http);
            if (!pins.IsRetired(owner.Id))
            {
                await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, RenewedWhileRunning);
                return;
            }

            // The session got a new id (login) or ended while this change was being stored: under the dead id it must not
            // stay, and it lives on only if the login's state carried it.
            store.End(owner.Id.Value);
            await ReleaseIfCarriedAsync(context, owner, checkpoint, epoch);
            return;
        }

        switch (outcome)
        {
            case SaveOutcome.Stored:
                AttemptSignals.Stored(http);
                pins.RecordVersion(owner.Id, checkpoint.Version);
                pins.RecordChain(owner.Id, checkpoint.IsDelta ? stored.Length : null, report.Chain);
                if (report.TierBehind)
                {
                    pins.RequireWhole(owner.Id);
                }

                owner.Version = Math.Max(owner.Version, checkpoint.Version);
                break;
            case SaveOutcome.Stale:
                // Same epoch, so the same backend: the stored newer version was made from this one (a concurrent
                // request of the session stored first, here or through another gateway). The change is kept in it,
                // and the tiers hold at least this version: the next grant says so, or the backend would send it again.
                Log.StaleCheckpoint(logger, owner.Id.Hash, checkpoint.Version);
                pins.RecordVersion(owner.Id, checkpoint.Version);
                owner.Version = Math.Max(owner.Version, checkpoint.Version);
                break;
            default:
                // Not kept (an epoch the session has left, or a version an older epoch already holds): never
                // released as a success. The failover step resends the request to the current
                // owner when that is safe, or answers that nothing was changed.
                if (outcome == SaveOutcome.Fenced)
                {
                    Log.CheckpointFenced(logger, owner.Id.Hash, checkpoint.Version, epoch);
                }
                else
                {
                    // This backend's copy has diverged from what is stored: a new epoch keeps it from being served.
                    Log.CheckpointDiverged(logger, owner.Id.Hash, checkpoint.Version, epoch);
                    pins.AdvanceEpoch(owner.Id);
                }

                AttemptSignals.NotKept(http);
                context.SuppressResponseBody = true;
                return;
        }

        TrimState(http, checkpoint);
    }

    // The app's body follows the state, which the client never sees.
    private static void TrimState(HttpContext http, CheckpointDescriptor checkpoint)
    {
        if (http.Response.ContentLength is { } length)
        {
            http.Response.ContentLength = length - checkpoint.Length;
        }
    }

    // 410 with Baton-Retired naming this request's session: the backend's own refusal, made without running the app.
    private static bool IsRetiredAnswer(HttpResponseMessage response, BatonSessionFeature session)
        => response.Headers.TryGetValues(ProtocolConstants.RetiredHeader, out var retired)
           && retired.Count() == 1
           && string.Equals(retired.First(), "sid=" + session.Id.Value, StringComparison.Ordinal);

    // A change of a session renewed or ended while it ran: released as made when the login's state, stored under the new
    // id, holds it (made on the same copy, in the same epoch, at this version or after); else answered "nothing was changed".
    private async Task ReleaseIfCarriedAsync(ResponseTransformContext context, BatonSessionFeature owner, CheckpointDescriptor checkpoint, long epoch)
    {
        if (await CarriedToNewIdAsync(owner.Id, checkpoint.Version, epoch, context.CancellationToken))
        {
            AttemptSignals.Stored(context.HttpContext);
            TrimState(context.HttpContext, checkpoint);
            return;
        }

        await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, RenewedWhileRunning);
    }

    // The rotation (once over) took this version, or a later one made from it, to the new id.
    private async Task<bool> CarriedToNewIdAsync(SessionId old, long version, long epoch, CancellationToken cancellationToken)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(_renamingWait);
        try
        {
            return await pins.RenamedToAsync(old, bounded.Token) is { } renewed
                && await store.GetAsync(renewed.Value, version, bounded.Token, epoch) is { } copy
                && copy.Version >= version && copy.Epoch == epoch;
        }
        catch (Exception ex) when (ex is StoreUnavailableException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return false;
        }
    }

    private static async Task<byte[]?> ReadStateAsync(HttpResponseMessage response, int length, CancellationToken cancellationToken)
    {
        // The forwarder later copies the rest of this same stream (HttpContent hands out one read stream).
        var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        var state = new byte[length];
        return await body.ReadAtLeastAsync(state, length, throwOnEndOfStream: false, cancellationToken) == length ? state : null;
    }

    private static async Task RefuseAsync(ResponseTransformContext context, int status, string reason)
    {
        context.SuppressResponseBody = true;
        await Refusal.WriteAsync(context.HttpContext, status, reason);
    }
}
