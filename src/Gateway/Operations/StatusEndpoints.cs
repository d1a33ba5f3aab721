using System.Net;
using System.Text.Json;
using Baton.Gateway.Configuration;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Operations;

/// <summary>
/// What operators read: the live status page (<c>/_baton/status</c>), the same as JSON
/// (<c>/_baton/status.json</c>) and the Prometheus scraping endpoint (<c>/_baton/metrics</c>). Loopback only
/// unless <c>Baton:Admin:AllowRemote</c>; from elsewhere, with the admin token when one is set.
/// </summary>
internal static class StatusEndpoints
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    public static void MapBatonStatus(this WebApplication app)
    {
        app.Use(async (context, next) =>
        {
            var path = context.Request.Path;
            if (path.StartsWithSegments(BatonConstants.Paths.Status) || path.StartsWithSegments(BatonConstants.Paths.StatusJson) || path.StartsWithSegments(BatonConstants.Paths.Metrics))
            {
                var settings = context.RequestServices.GetRequiredService<IOptions<BatonOptions>>().Value.Admin;
                var remote = context.Connection.RemoteIpAddress is { } address && !IPAddress.IsLoopback(address);
                if (remote && !settings.AllowRemote)
                {
                    await Refusal.WriteAsync(context, StatusCodes.Status403Forbidden, "The status page and metrics are served to loopback only (Baton:Admin:AllowRemote).");
                    return;
                }

                if (remote && !string.IsNullOrEmpty(settings.Token) && !AdminEndpoints.Authorized(context.Request.Headers.Authorization.ToString(), settings.Token))
                {
                    await Refusal.WriteAsync(context, StatusCodes.Status401Unauthorized, "A valid 'Authorization: Bearer <Baton:Admin:Token>' header is required.");
                    return;
                }
            }

            await next(context);
        });

        app.MapGet(BatonConstants.Paths.StatusJson, (StatusReport report) => Results.Json(report.Build(), Json));
        app.MapGet(BatonConstants.Paths.Status, () => Results.Content(StatusPage.Html, "text/html; charset=utf-8"));
        app.MapPrometheusScrapingEndpoint(BatonConstants.Paths.Metrics);
    }
}
