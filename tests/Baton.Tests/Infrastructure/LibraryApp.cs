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
    public static Task<TestBackend> StartAsync(string instanceId, params string[] extraArgs) => StartAsync(instanceId, extraArgs, configure: null);

    /// <summary>Starts the app; <paramref name="configure"/> runs on the builder last (logging, services).</summary>
    public static async Task<TestBackend> StartAsync(string instanceId, string[] extraArgs, Action<WebApplicationBuilder>? configure)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            Args = ["--urls=http://127.0.0.1:0", $"--Baton:Secret={TestGateway.Secret}", .. extraArgs],
            ContentRootPath = TestPaths.NewFolder("library-app"),
            EnvironmentName = "Production",
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddBatonSession();
        builder.Services.AddSingleton<RequestGate>();
        configure?.Invoke(builder);
        var app = builder.Build();
        app.UseWebSockets();
        app.Use(async (c, next) =>
        {
            if (c.Request.Headers.ContainsKey("X-Test-Arrival"))
            {
                c.RequestServices.GetRequiredService<RequestGate>().NoteArrival();
            }

            await next(c);
        });
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
        // Sets each key=value of set (comma-separated), removes each key of remove, and with pad sets "pad" to that many bytes.
        app.MapPost("/keys", (HttpContext c, string? set, string? remove, int? pad) =>
        {
            foreach (var pair in (set ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                var (key, value) = (pair[..pair.IndexOf('=', StringComparison.Ordinal)], pair[(pair.IndexOf('=', StringComparison.Ordinal) + 1)..]);
                c.Session.SetString(key, value);
            }

            foreach (var key in (remove ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries))
            {
                c.Session.Remove(key);
            }

            if (pad is { } bytes)
            {
                c.Session.Set("pad", BigBody(bytes));
            }

            return "set";
        });
        app.MapPost("/clear", (HttpContext c) =>
        {
            c.Session.Clear();
            return "cleared";
        });

        // Changes the session, then waits at the app's RequestGate: the session stays held until the test releases it.
        app.MapPost("/hold", async (HttpContext c, RequestGate gate) =>
        {
            var n = (c.Session.GetInt32("n") ?? 0) + 1;
            c.Session.SetInt32("n", n);
            await gate.PassAsync(c.RequestAborted);
            return n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
        // Starts its response, waits at the app's RequestGate, then increments the counter: a change that rides
        // with the session's next response.
        app.MapPost("/late-held", async (HttpContext c, RequestGate gate) =>
        {
            await c.Response.StartAsync();
            await c.Response.WriteAsync("streaming");
            await c.Response.Body.FlushAsync();
            await gate.PassAsync(c.RequestAborted);
            c.Session.SetInt32("n", (c.Session.GetInt32("n") ?? 0) + 1);
        });
        // GET and HEAD alike: increments the counter and names itself in a header of its own.
        app.MapMethods("/head", [HttpMethods.Get, HttpMethods.Head], (HttpContext c) =>
        {
            var n = (c.Session.GetInt32("n") ?? 0) + 1;
            c.Session.SetInt32("n", n);
            c.Response.Headers["X-App"] = "head";
            return n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
        // A response of BigBody(bytes), written in 64 KiB pieces; with change=before the session changes before the
        // first byte, with change=after once the whole body is written; with length=true it declares its Content-Length.
        app.MapGet("/big", async (HttpContext c, int bytes, string? change, bool? length) =>
        {
            if (change == "before")
            {
                c.Session.SetString("late", "before");
            }

            if (length == true)
            {
                c.Response.ContentLength = bytes;
            }

            c.Response.ContentType = "application/octet-stream";
            var body = BigBody(bytes);
            for (var offset = 0; offset < body.Length; offset += 64 * 1024)
            {
                await c.Response.Body.WriteAsync(body.AsMemory(offset, Math.Min(64 * 1024, body.Length - offset)), c.RequestAborted);
            }

            if (change == "after")
            {
                c.Session.SetString("late", "after");
            }
        });
        // Login held at the app's RequestGate: the session gets a new id once the test releases it.
        app.MapPost("/rotate-held", async (HttpContext c, RequestGate gate) =>
        {
            await gate.PassAsync(c.RequestAborted);
            c.Session.SetString("user", "ann");
            return c.RotateBatonSession() ? "rotated" : "not rotated";
        });
        // Login: signs "ann" in and gives the session a new id carrying its state.
        app.MapPost("/rotate", (HttpContext c) =>
        {
            c.Session.SetString("user", "ann");
            return c.RotateBatonSession() ? "rotated" : "not rotated";
        });
        // Who the session says is signed in: "-" for nobody.
        app.MapGet("/whoami", (HttpContext c) => c.Session.GetString("user") ?? "-");
        // Logout: the session ends everywhere (the library drops its copy once the response has gone).
        app.MapPost("/end", (HttpContext c) => c.EndBatonSession() ? "ended" : "not ended");
        // Answers with the Cookie header it was sent, and sets a cookie of its own.
        app.MapGet("/cookies", (HttpContext c) =>
        {
            c.Response.Cookies.Append("app", "from-the-app", new CookieOptions { Path = "/", HttpOnly = true });
            return c.Request.Headers.Cookie.ToString();
        });

        return await TestBackend.StartAppAsync(instanceId, app);
    }

    /// <summary>The body of <c>GET /big?bytes=N</c>: N bytes of a fixed pseudo-random sequence (xorshift32).</summary>
    public static byte[] BigBody(int bytes)
    {
        var body = new byte[bytes];
        var x = 2463534242u;
        for (var i = 0; i < body.Length; i++)
        {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            body[i] = (byte)x;
        }

        return body;
    }
}
