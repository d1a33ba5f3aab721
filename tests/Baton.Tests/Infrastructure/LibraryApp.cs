using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// An app other than the demo that takes part through the two lines of the backend library, with
/// endpoints that answer 4xx/5xx and change the session late, to pin the library's edges.
/// </summary>
internal static class LibraryApp
{
    public static async Task<TestBackend> StartAsync(string instanceId, params string[] extraArgs)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = ["--urls=http://127.0.0.1:0", $"--Baton:Secret={TestGateway.Secret}", .. extraArgs],
            ContentRootPath = TestPaths.NewFolder("library-app"),
            EnvironmentName = "Production",
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddBatonSession();
        var app = builder.Build();
        app.UseWebSockets();
        app.UseBatonSession();

        app.MapGet("/health", () => "ok");
        app.MapGet("/read", (HttpContext c) => $"{c.Session.GetInt32("n") ?? 0}/{c.Session.GetString("late") ?? "-"}");
        app.MapPost("/inc", (HttpContext c) =>
        {
            var n = (c.Session.GetInt32("n") ?? 0) + 1;
            c.Session.SetInt32("n", n);
            return n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
        app.MapPost("/fail", (HttpContext c) =>
        {
            c.Session.SetInt32("n", (c.Session.GetInt32("n") ?? 0) + 1);
            return Results.Problem("the app failed", statusCode: 500);
        });
        app.MapPost("/teapot", (HttpContext c) => Results.StatusCode(418));
        app.MapPost("/empty", (HttpContext c) =>
        {
            c.Session.SetInt32("n", (c.Session.GetInt32("n") ?? 0) + 1);
            return Results.NoContent();
        });
        app.MapPost("/late", async (HttpContext c) =>
        {
            await c.Response.StartAsync();
            await c.Response.WriteAsync("streaming");
            c.Session.SetString("late", "yes");
        });
        // A change too large to keep, then a WebSocket: the refusal is the answer, and no socket opens.
        app.Map("/ws-oversized", async (HttpContext c) =>
        {
            c.Session.Set("big", new byte[2 * 1024 * 1024]);
            using var socket = await c.WebSockets.AcceptWebSocketAsync();
        });
        app.MapPost("/clear", (HttpContext c) =>
        {
            c.Session.Clear();
            return "cleared";
        });

        return await TestBackend.StartAppAsync(instanceId, app);
    }
}
