using System.Net;
using System.Security.Cryptography;
using System.Text;
using Baton.Gateway.Configuration;
using Baton.Gateway.Destinations;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Sessions;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;

namespace Baton.Gateway.Operations;

/// <summary>
/// Operator endpoints under <c>/_baton/admin</c>: drain and undrain a destination, list drains. Off unless
/// <c>Baton:Admin:Token</c> is set; every call needs <c>Authorization: Bearer {token}</c> and, unless
/// <c>Baton:Admin:AllowRemote</c>, must come from loopback.
/// </summary>
internal static class AdminEndpoints
{
    public static void MapBatonAdmin(this WebApplication app)
    {
        var admin = app.MapGroup(BatonConstants.Paths.Admin).AddEndpointFilter(async (invocation, next) =>
        {
            var context = invocation.HttpContext;
            var settings = context.RequestServices.GetRequiredService<IOptions<BatonOptions>>().Value.Admin;
            var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(AdminEndpoints));
            if (string.IsNullOrEmpty(settings.Token))
            {
                return Results.NotFound();
            }

            if (!settings.AllowRemote && context.Connection.RemoteIpAddress is { } remote && !IPAddress.IsLoopback(remote))
            {
                Log.AdminRefused(logger, "not loopback");
                return Results.Text("Admin requests are accepted from loopback only (Baton:Admin:AllowRemote).", statusCode: StatusCodes.Status403Forbidden);
            }

            if (!Authorized(context.Request.Headers.Authorization.ToString(), settings.Token))
            {
                Log.AdminRefused(logger, "bad token");
                return Results.Text("A valid 'Authorization: Bearer <Baton:Admin:Token>' header is required.", statusCode: StatusCodes.Status401Unauthorized);
            }

            return await next(invocation);
        });

        admin.MapPost("/clusters/{cluster}/destinations/{destination}/drain", (string cluster, string destination, HttpContext context) => Change(context, cluster, destination, drain: true));
        admin.MapPost("/clusters/{cluster}/destinations/{destination}/undrain", (string cluster, string destination, HttpContext context) => Change(context, cluster, destination, drain: false));
        admin.MapGet("/drains", (DrainRegistry drains) => Results.Json(drains.List().Select(d => new { cluster = d.Cluster, destination = d.Destination, since = d.Since })));
    }

    private static IResult Change(HttpContext context, string cluster, string destination, bool drain)
    {
        var services = context.RequestServices;
        var proxy = services.GetRequiredService<IProxyStateLookup>();
        if (!proxy.TryGetCluster(cluster, out var state) || !state.Destinations.TryGetValue(destination, out var target))
        {
            return Results.Text($"No destination '{destination}' in cluster '{cluster}'.", statusCode: StatusCodes.Status404NotFound);
        }

        // The ids as the proxy spells them, whatever case the operator used.
        (cluster, destination) = (state.ClusterId, target.DestinationId);
        var drains = services.GetRequiredService<DrainRegistry>();
        var changed = drain ? drains.Drain(cluster, destination, services.GetRequiredService<TimeProvider>().GetUtcNow()) : drains.Undrain(cluster, destination);
        if (changed)
        {
            // The available-destinations policy reads the drains: have YARP ask it again.
            services.GetRequiredService<IClusterDestinationsUpdater>().UpdateAvailableDestinations(state);
            services.GetRequiredService<BatonMetrics>().DrainChanged(drain);
            Log.DrainChanged(services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(AdminEndpoints)), cluster, destination, drain ? "drained" : "undrained");
        }

        return Results.Json(new { cluster, destination, draining = drain, changed });
    }

    /// <summary>Whether an Authorization header carries the admin token (compared in constant time).</summary>
    public static bool Authorized(string header, string token)
    {
        const string Scheme = "Bearer ";
        if (!header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var presented = Encoding.UTF8.GetBytes(header[Scheme.Length..].Trim());
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(presented), SHA256.HashData(Encoding.UTF8.GetBytes(token)));
    }
}
