using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Baton.Backend;

/// <summary>The library's own answers: a status, <c>Cache-Control: no-store</c> and a plain-text reason.</summary>
internal static class Refusal
{
    public static Task WriteAsync(HttpContext context, int status, string reason)
    {
        var response = context.Response;
        Prepare(response, status, Encoding.UTF8.GetByteCount(reason));
        return response.WriteAsync(reason, context.RequestAborted);
    }

    /// <summary>Sets status and headers of a refusal whose body (<paramref name="length"/> bytes) is written by the caller.</summary>
    public static void Prepare(HttpResponse response, int status, int length)
    {
        response.Clear();
        response.StatusCode = status;
        response.ContentType = "text/plain; charset=utf-8";
        response.ContentLength = length;
        response.Headers[HeaderNames.CacheControl] = "no-store";
        if (status == StatusCodes.Status503ServiceUnavailable)
        {
            response.Headers[HeaderNames.RetryAfter] = 1.ToString(CultureInfo.InvariantCulture);
        }
    }
}
