using System.Net.Sockets;
using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Sessions;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Baton.Gateway.Failover;

/// <summary>
/// Proxy-pipeline step around affinity, load balancing and forwarding: when the attempt fails before any
/// of the response reached the client — the destination refused the connection, reset it, timed out, or
/// refused the session as stale — it marks the destination down, moves the session (restoring its last
/// checkpoint on a healthy destination, once per session), and resends the buffered request there.
/// A request the dead backend may already have processed is resent only when that is safe.
/// </summary>
internal sealed class FailoverMiddleware(
    RequestDelegate next,
    SessionMover mover,
    IDestinationHealthUpdater health,
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
        var resendable = await PrepareBodyAsync(context);
        var tried = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        for (var attempt = 1; ; attempt++)
        {
            await next(context);

            var error = context.Features.Get<IForwarderErrorFeature>();
            var stale = context.Features.Get<StaleSessionSignal>() is not null;
            if ((error is null && !stale) || context.Response.HasStarted || context.RequestAborted.IsCancellationRequested)
            {
                if (error is not null && context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
                {
                    Log.FailedAfterResponseStarted(logger, proxy.ProxiedDestination?.DestinationId ?? "-", error.Error.ToString(), Detail(error));
                }

                return;
            }

            var destination = proxy.ProxiedDestination;
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
                    ? destination
                    : await MoveAsync(destination.DestinationId, reason);
            }
            else if (error!.Error == ForwarderError.NoAvailableDestinations)
            {
                // Nothing was sent anywhere: wait (bounded) for a destination, then let affinity and load balancing choose again.
                target = null;
                if (!await mover.WaitForAnyDestinationAsync(cluster, context.RequestAborted))
                {
                    await RefuseNoDestinationAsync();
                    return;
                }
            }
            else
            {
                var failed = destination?.DestinationId;
                if (destination is not null)
                {
                    health.SetPassive(cluster, destination, DestinationHealth.Unhealthy, _options.ReactivationPeriod);
                }

                metrics.Failover(error.Error.ToString());
                Log.FailingOver(logger, failed ?? "-", error.Error.ToString(), Detail(error));
                target = await MoveAsync(failed, reason);
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

            if (attempt >= _options.MaxAttempts || !resendable)
            {
                metrics.ResendImpossible(resendable ? "attempts_exhausted" : "body_not_buffered");
                Log.ResendImpossible(logger, session.Id.Hash, reason, resendable ? $"{attempt} attempts made" : "its body was too large or streamed to keep");
                await Refusal.WriteAsync(context, StatusCodes.Status503ServiceUnavailable,
                    resendable ? "No backend could answer this request; retry shortly." : "The backend failed and this request's body could not be resent; retry shortly.");
                return;
            }

            // Resend: a clean response, no error, the body from the start, and the chosen destination.
            context.Response.Clear();
            context.Features.Set<IForwarderErrorFeature>(null);
            context.Features.Set<StaleSessionSignal>(null);
            if (context.Request.Body.CanSeek)
            {
                context.Request.Body.Position = 0;
            }

            proxy.AvailableDestinations = target is null ? cluster.DestinationsState.AvailableDestinations : target;
            metrics.Resent();
        }

        async Task<DestinationState?> MoveAsync(string? failed, string reason)
        {
            if (failed is not null)
            {
                tried.Add(failed);
            }

            return await mover.MoveAsync(session, cluster, failed, tried, reason, context.RequestAborted);
        }

        Task RefuseNoDestinationAsync()
        {
            metrics.NoDestination();
            Log.NoDestination(logger, cluster.ClusterId);
            return Refusal.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "No healthy backend is available; retry shortly.");
        }
    }

    /// <summary>Keeps the body so it can be sent again; false when it cannot be (too large, streamed, upgraded).</summary>
    private async Task<bool> PrepareBodyAsync(HttpContext context)
    {
        var request = context.Request;
        if (context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>()?.IsUpgradableRequest == true
            || string.Equals(request.ContentType, "application/grpc", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        if (request.ContentLength is 0 || (request.ContentLength is null && request.Headers.TransferEncoding.Count == 0))
        {
            return true;
        }

        if (request.ContentLength is { } length)
        {
            if (length > _options.MaxBufferedRequestBytes)
            {
                return false;
            }

            request.EnableBuffering(bufferThreshold: 64 * 1024, bufferLimit: _options.MaxBufferedRequestBytes);
            return true;
        }

        // A chunked body of unknown length: read it up to the limit. A small one is kept whole and can be
        // resent; a larger one goes on as what was read followed by the rest, and is not resent.
        var kept = new MemoryStream();
        context.Response.RegisterForDispose(kept);
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            kept.Write(chunk, 0, read);
            if (kept.Length > _options.MaxBufferedRequestBytes)
            {
                kept.Position = 0;
                request.Body = new PrefixedReadStream(kept, request.Body);
                return false;
            }
        }

        kept.Position = 0;
        request.Body = kept;
        return true;
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
