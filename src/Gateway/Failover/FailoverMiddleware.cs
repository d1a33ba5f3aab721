using System.Net.Sockets;
using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Sessions;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Baton.Gateway.Failover;

/// <summary>
/// Proxy-pipeline step around affinity, load balancing and forwarding. It reads the request body from the
/// client first (<see cref="RequestBodyBuffer"/>), then judges every failed attempt (<see cref="AttemptFailure"/>):
/// a client's failure is answered with its own status, a failure of the gateway's own code with 503, and
/// only a destination's failure before any of the response reached the client — refused or reset
/// connection, no answer in time, or the session refused as stale — moves the session (restoring its last
/// checkpoint on a healthy destination, once per session) and resends the buffered request there.
/// A request the dead backend may already have processed is resent only when that is safe, and one whose
/// change was already stored never is.
/// </summary>
internal sealed class FailoverMiddleware(
    RequestDelegate next,
    SessionMover mover,
    RequestBodyBuffer bodies,
    IOptions<BatonOptions> options,
    BatonMetrics metrics,
    ILogger<FailoverMiddleware> logger)
{
    private readonly BatonFailoverOptions _options = options.Value.Failover;

    public async Task InvokeAsync(HttpContext context)
    {
        var session = context.Features.Get<BatonSessionFeature>();
        if (session is null)
        {
            await next(context);
            return;
        }

        var proxy = context.GetReverseProxyFeature();
        var cluster = proxy.Route.Cluster!;

        // The body is read from the client before any backend is involved: its failures are the client's alone.
        var body = await bodies.PrepareAsync(context);
        if (body.Failure is { } bodyFailure)
        {
            await RefuseClientAsync(context, bodyFailure, "-");
            return;
        }

        var tried = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var attempt = 1; ; attempt++)
        {
            await next(context);

            var error = context.Features.Get<IForwarderErrorFeature>();
            var stale = context.Features.Get<StaleSessionSignal>() is not null;
            if (error is null && context.Features.Get<RetiredSessionSignal>() is not null)
            {
                // The backend rotated the session away or ended it (410 Baton-Retired): never restored, nowhere resent.
                await mover.RefuseGoneAsync(context, session, "its backend retired it");
                return;
            }

            if (error is null && !stale)
            {
                if (context.Features.Get<AttemptSignals>()?.ChangeNotKept != true)
                {
                    return;
                }

                // The store refused the change (an old owner answered after the session moved on): it was not
                // kept. Resend to the current owner when that is safe (it then happens once); else say nothing changed.
                if (!body.Resendable || attempt >= _options.MaxAttempts || !MayResend(context.Request))
                {
                    metrics.ResendRefused();
                    await Refusal.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                        "The session moved to another backend while this request ran; nothing was changed. Retry shortly.");
                    return;
                }

                await mover.FollowAsync(session, context.RequestAborted);
                PrepareResend(context, proxy, cluster.DestinationsState.AvailableDestinations);
                continue;
            }

            var destination = proxy.ProxiedDestination;
            if (error is not null && error.Error != ForwarderError.NoAvailableDestinations)
            {
                var failure = AttemptFailure.Classify(context, error);
                if (failure.Party == FailureParty.None)
                {
                    return;
                }

                if (failure.Party == FailureParty.Client)
                {
                    await RefuseClientAsync(context, failure, destination?.DestinationId ?? "-");
                    return;
                }

                if (failure.Party == FailureParty.Gateway)
                {
                    metrics.GatewayError(failure.Reason);
                    Log.GatewayFailedAttempt(logger, session.Id.Hash, failure.Reason, Detail(error));
                    await RefuseUnlessStartedAsync(context, StatusCodes.Status503ServiceUnavailable, "The gateway could not complete this request; retry shortly.");
                    return;
                }

                if (context.Response.HasStarted)
                {
                    Log.FailedAfterResponseStarted(logger, destination?.DestinationId ?? "-", error.Error.ToString(), Detail(error));
                    return;
                }

                if (context.Features.Get<AttemptSignals>()?.ChangeStored == true)
                {
                    // The backend's change is stored: sending the request again would apply it twice.
                    metrics.ResendRefused();
                    Log.ResendRefusedStored(logger, session.Id.Hash, error.Error.ToString());
                    await Refusal.WriteAsync(context, StatusCodes.Status502BadGateway,
                        "The backend failed while sending its answer, after its change to the session was saved; the request was not resent.");
                    return;
                }
            }

            var reason = stale ? "stale" : error!.Error.ToString();
            using var span = BatonTelemetry.Source.StartActivity("baton.failover");
            span?.SetTag("baton.session", session.Id.Hash);
            span?.SetTag("baton.destination", destination?.DestinationId);
            span?.SetTag("baton.error", reason);
            span?.SetTag("baton.attempt", attempt);
            DestinationState? target;
            if (stale && destination is not null)
            {
                Log.StaleCopyRefreshed(logger, destination.DestinationId, session.Id.Hash);
                target = await mover.RefreshAsync(session, cluster, destination, context.RequestAborted)
                    ?? (session.Gone ? null : await MoveAsync(destination.DestinationId, reason));
                if (session.Gone)
                {
                    await RefuseNoDestinationAsync();
                    return;
                }
            }
            else if (error!.Error == ForwarderError.NoAvailableDestinations)
            {
                // Nothing was sent anywhere: wait (bounded) for a destination, then let affinity and load balancing choose again.
                target = null;
                if (!await mover.WaitForAnyDestinationAsync(session, cluster, context.RequestAborted))
                {
                    await RefuseNoDestinationAsync();
                    return;
                }
            }
            else
            {
                // The destination's own failure: the passive health policy has already marked it down.
                var failed = destination?.DestinationId;
                metrics.Failover(error.Error.ToString());
                Log.FailingOver(logger, failed ?? "-", error.Error.ToString(), Detail(error));
                target = await MoveAsync(failed, reason);
                if (session.Gone)
                {
                    await RefuseNoDestinationAsync();
                    return;
                }

                if (!NeverReached(error) && !MayResend(context.Request))
                {
                    metrics.ResendRefused();
                    Log.ResendRefused(logger, session.Id.Hash, error.Error.ToString(), context.Request.Method);
                    await Refusal.WriteAsync(context, StatusCodes.Status502BadGateway,
                        "The backend failed while handling this request, which may have been applied; it was not resent. The session is safe: retry if the request is safe to repeat.");
                    return;
                }

                if (target is null)
                {
                    await RefuseNoDestinationAsync();
                    return;
                }
            }

            if (attempt >= _options.MaxAttempts || !body.Resendable)
            {
                metrics.ResendImpossible(body.Resendable ? "attempts_exhausted" : "body_not_buffered");
                Log.ResendImpossible(logger, session.Id.Hash, reason, body.Resendable ? $"{attempt} attempts made" : "its body was too large or streamed to keep (a gRPC call's always is)");
                await Refusal.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                    body.Resendable ? "No backend could answer this request; retry shortly." : "The backend failed and this request (a gRPC call, or a body too large to keep) could not be resent; retry shortly.");
                return;
            }

            PrepareResend(context, proxy, target is null ? cluster.DestinationsState.AvailableDestinations : target);
        }

        async Task<DestinationState?> MoveAsync(string? failed, string reason)
        {
            if (failed is not null)
            {
                tried.Add(failed);
            }

            return await mover.MoveAsync(session, cluster, failed, tried, reason, context.RequestAborted);
        }

        Task RefuseNoDestinationAsync() => mover.RefuseNoDestinationAsync(context, cluster);
    }

    /// <summary>A clean response, no error, no signals of the last attempt, the body from the start, and where to send it.</summary>
    private void PrepareResend(HttpContext context, IReverseProxyFeature proxy, IReadOnlyList<DestinationState> destinations)
    {
        context.Response.Clear();
        context.Features.Set<IForwarderErrorFeature>(null);
        context.Features.Set<StaleSessionSignal>(null);
        context.Features.Set<RetiredSessionSignal>(null);
        context.Features.Set<AttemptSignals>(null);
        if (context.Request.Body.CanSeek)
        {
            context.Request.Body.Position = 0;
        }

        proxy.AvailableDestinations = destinations;
        metrics.Resent();
    }

    /// <summary>The client's own failure: counted and logged, answered with its status while it can still hear it.</summary>
    private async Task RefuseClientAsync(HttpContext context, AttemptFailure failure, string destinationId)
    {
        metrics.ClientFailure(failure.Reason);
        Log.ClientFailedRequest(logger, context.Request.Method, destinationId, failure.Reason, failure.ClientStatus);
        if (context.RequestAborted.IsCancellationRequested)
        {
            return;
        }

        await RefuseUnlessStartedAsync(context, failure.ClientStatus, failure.Reason switch
        {
            "body_stalled" => "The request body stopped arriving; nothing was sent to the application.",
            "body_too_large" => "The request body is larger than the gateway accepts (Baton:Limits:MaxRequestBodyBytes); the request was not completed.",
            "body_too_slow" => "The request body arrived too slowly; nothing was sent to the application.",
            "body_malformed" => "The request body could not be read; nothing was sent to the application.",
            _ => "The request was not completed by the client.",
        }, closeConnection: true);
    }

    private static Task RefuseUnlessStartedAsync(HttpContext context, int status, string reason, bool closeConnection = false)
    {
        if (context.Response.HasStarted)
        {
            // Too late for a status code: end the response abruptly so the client sees a broken answer, not a short one.
            context.Abort();
            return Task.CompletedTask;
        }

        return Refusal.WriteAsync(context, status, reason, closeConnection);
    }

    // The innermost message only: formatting a whole exception (its stack trace) for the log costs tens of
    // milliseconds the first time, paid by the very requests a failover is trying to answer quickly.
    private static string Detail(IForwarderErrorFeature error)
        => error.Exception?.GetBaseException().Message ?? "no detail";

    /// <summary>True when the backend cannot have received the request: the connection was never made.</summary>
    private static bool NeverReached(IForwarderErrorFeature error)
        => error.Error is ForwarderError.Request or ForwarderError.RequestCreation
           && error.Exception is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } or HttpRequestException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionRefused } };

    private bool MayResend(HttpRequest request)
        => _options.ResendNonIdempotent
           || HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method)
           || HttpMethods.IsTrace(request.Method) || HttpMethods.IsPut(request.Method) || HttpMethods.IsDelete(request.Method)
           || request.Headers.ContainsKey("Idempotency-Key");
}
