using Baton.Gateway.Diagnostics;

namespace Baton.Gateway.Operations;

/// <summary>
/// Last line of the no-500 rule: an exception that escapes the gateway's own code becomes a logged,
/// counted 503 with <c>Retry-After</c> while the response has not started, instead of the host's 500.
/// </summary>
internal sealed class GatewayErrorMiddleware(RequestDelegate next, BatonMetrics metrics, ILogger<GatewayErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (BadHttpRequestException ex) when (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
        {
            // The client's request itself was bad (a body over Kestrel's limit, a broken chunk): its status, not a 503.
            metrics.ClientFailure("unreadable");
            Log.BadRequest(logger, context.Request.Method, context.Request.Path, ex.StatusCode, ex.Message);
            await Refusal.WriteAsync(context, ex.StatusCode, $"The request could not be read: {ex.Message}");
        }
        catch (Exception ex) when (!context.RequestAborted.IsCancellationRequested)
        {
            metrics.GatewayError("unhandled");
            Log.UnhandledGatewayError(logger, context.Request.Method, context.Request.Path, ex);
            if (context.Response.HasStarted)
            {
                // Too late for a status code: end the response abruptly so the client sees a broken answer, not a short one.
                context.Abort();
                return;
            }

            await Refusal.WriteAsync(context, StatusCodes.Status503ServiceUnavailable, "The gateway could not handle this request; retry shortly.");
        }
    }
}
