using Microsoft.Net.Http.Headers;

namespace Baton.Gateway;

/// <summary>
/// The one shape of an answer the gateway gives itself instead of a backend's: a status, a plain-text
/// reason and, for 503, <c>Retry-After</c>. Never a 500.
/// </summary>
internal static class Refusal
{
    /// <param name="closeConnection">Close an HTTP/1.x connection after this answer (a request body was left unread).</param>
    /// <param name="headers">Adds headers of its own to the answer (a cookie to expire, say).</param>
    public static Task WriteAsync(HttpContext context, int statusCode, string reason, bool closeConnection = false, Action<HttpContext>? headers = null)
    {
        var response = context.Response;
        response.Clear();
        response.StatusCode = statusCode;
        if (closeConnection && !HttpProtocol.IsHttp2(context.Request.Protocol) && !HttpProtocol.IsHttp3(context.Request.Protocol))
        {
            response.Headers[HeaderNames.Connection] = "close";
        }

        if (statusCode == StatusCodes.Status503ServiceUnavailable)
        {
            response.Headers[HeaderNames.RetryAfter] = BatonConstants.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        response.Headers[HeaderNames.CacheControl] = "no-store";
        response.ContentType = "text/plain; charset=utf-8";
        headers?.Invoke(context);
        return response.WriteAsync(reason, context.RequestAborted);
    }
}
