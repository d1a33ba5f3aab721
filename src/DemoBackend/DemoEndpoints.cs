using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Options;

namespace Baton.DemoBackend;

internal sealed record CartItem(string Sku, int Qty);

internal sealed record CounterAnswer(int Count, string Instance);

internal sealed record CartAnswer(IReadOnlyList<CartItem> Items, string Instance);

internal sealed record BlobAnswer(string Sha256, int Bytes, string Instance);

internal sealed record EchoAnswer(string Echo, int Count, string Instance);

internal sealed record HealthAnswer(string Status, string Instance);

internal sealed record ErrorAnswer(string Error, string Instance);

internal sealed record LoginRequest(string? User);

internal sealed record UserAnswer(string? User, string Instance);

/// <summary>
/// The demo's endpoints. State lives only in the standard <see cref="ISession"/>: what a real app does.
/// </summary>
internal static class DemoEndpoints
{
    public const int MaxSkuLength = 64;
    public const int MaxQty = 1000;
    public const string CounterKey = "counter";
    private const string CartKey = "cart";
    private const string BlobKey = "blob";
    private const string UserKey = "user";
    private const int MaxUserLength = 64;

    public static void MapDemoEndpoints(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<DemoOptions>>().Value;
        var instance = options.InstanceId;

        app.MapGet("/health", () => new HealthAnswer("healthy", instance));

        app.MapGet("/counter", async (HttpContext context) =>
        {
            var session = await LoadAsync(context);
            return new CounterAnswer(session.GetInt32(CounterKey) ?? 0, instance);
        });

        app.MapPost("/counter", async (HttpContext context) =>
        {
            var session = await LoadAsync(context);
            var count = (session.GetInt32(CounterKey) ?? 0) + 1;
            session.SetInt32(CounterKey, count);
            await session.CommitAsync(context.RequestAborted);
            return new CounterAnswer(count, instance);
        });

        app.MapGet("/cart", async (HttpContext context) =>
        {
            var session = await LoadAsync(context);
            return new CartAnswer(ReadCart(session), instance);
        });

        app.MapPost("/cart/items", async (HttpContext context) =>
        {
            CartItem? item;
            try
            {
                item = await context.Request.ReadFromJsonAsync<CartItem>(context.RequestAborted);
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                return Results.BadRequest(new ErrorAnswer("The body must be JSON: {\"sku\": \"...\", \"qty\": n}.", instance));
            }

            if (item is null || string.IsNullOrWhiteSpace(item.Sku) || item.Sku.Length > MaxSkuLength)
            {
                return Results.BadRequest(new ErrorAnswer($"sku must be 1 to {MaxSkuLength} characters.", instance));
            }

            if (item.Qty is < 1 or > MaxQty)
            {
                return Results.BadRequest(new ErrorAnswer($"qty must be between 1 and {MaxQty}.", instance));
            }

            var session = await LoadAsync(context);
            var cart = ReadCart(session).ToList();
            var index = cart.FindIndex(existing => existing.Sku == item.Sku);
            if (index >= 0)
            {
                cart[index] = cart[index] with { Qty = cart[index].Qty + item.Qty };
            }
            else if (cart.Count >= options.MaxCartItems)
            {
                return Results.BadRequest(new ErrorAnswer($"The cart holds at most {options.MaxCartItems} distinct items.", instance));
            }
            else
            {
                cart.Add(item);
            }

            session.Set(CartKey, JsonSerializer.SerializeToUtf8Bytes(cart, JsonSerializerOptions.Web));
            await session.CommitAsync(context.RequestAborted);
            return Results.Ok(new CartAnswer(cart, instance));
        });

        // Login rotates the session id (an id planted before login is worthless after it); the state carries over.
        app.MapPost("/login", async (HttpContext context) =>
        {
            LoginRequest? login;
            try
            {
                login = await context.Request.ReadFromJsonAsync<LoginRequest>(context.RequestAborted);
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException)
            {
                return Results.BadRequest(new ErrorAnswer("The body must be JSON: {\"user\": \"...\"}.", instance));
            }

            if (login?.User is not { Length: > 0 and <= MaxUserLength } user)
            {
                return Results.BadRequest(new ErrorAnswer($"user must be 1 to {MaxUserLength} characters.", instance));
            }

            var session = await LoadAsync(context);
            session.SetString(UserKey, user);
            await session.CommitAsync(context.RequestAborted);
            context.RotateBatonSession();
            return Results.Ok(new UserAnswer(user, instance));
        });

        app.MapPost("/logout", async (HttpContext context) =>
        {
            var session = await LoadAsync(context);
            session.Clear();
            await session.CommitAsync(context.RequestAborted);
            context.EndBatonSession();
            return new UserAnswer(null, instance);
        });

        app.MapGet("/blob", async (HttpContext context) =>
        {
            var session = await LoadAsync(context);
            var blob = session.Get(BlobKey) ?? [];
            return new BlobAnswer(Sha256(blob), blob.Length, instance);
        });

        // ?bytes=N stores N random bytes; without it the request body is the blob (an upload).
        app.MapPost("/blob", async (HttpContext context, int? bytes) =>
        {
            byte[] blob;
            if (bytes is { } size)
            {
                if (size < 0 || size > options.MaxBlobBytes)
                {
                    return Results.BadRequest(new ErrorAnswer($"bytes must be between 0 and {options.MaxBlobBytes}.", instance));
                }

                blob = RandomNumberGenerator.GetBytes(size);
            }
            else if (await ReadUpToAsync(context.Request.Body, options.MaxBlobBytes, context.RequestAborted) is { } uploaded)
            {
                blob = uploaded;
            }
            else
            {
                return Results.Json(new ErrorAnswer($"The body must be at most {options.MaxBlobBytes} bytes.", instance), statusCode: StatusCodes.Status413PayloadTooLarge);
            }

            var session = await LoadAsync(context);
            session.Set(BlobKey, blob);
            await session.CommitAsync(context.RequestAborted);
            return Results.Ok(new BlobAnswer(Sha256(blob), blob.Length, instance));
        });

        // A WebSocket that answers each text message with {"echo", "count", "instance"}: the session's
        // counter as this instance holds it, so a client sees which backend its socket is pinned to.
        app.Map("/echo", async (HttpContext context) =>
        {
            if (!context.WebSockets.IsWebSocketRequest)
            {
                return Results.BadRequest(new ErrorAnswer("GET /echo is a WebSocket.", instance));
            }

            var session = await LoadAsync(context);
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            await EchoAsync(socket, () => session.GetInt32(CounterKey) ?? 0, instance, context.RequestAborted);
            return Results.Empty;
        });
    }

    private static async Task EchoAsync(System.Net.WebSockets.WebSocket socket, Func<int> count, string instance, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        while (socket.State == System.Net.WebSockets.WebSocketState.Open)
        {
            var received = await socket.ReceiveAsync(buffer, cancellationToken);
            if (received.MessageType == System.Net.WebSockets.WebSocketMessageType.Close)
            {
                await socket.CloseOutputAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, cancellationToken);
                return;
            }

            var text = System.Text.Encoding.UTF8.GetString(buffer, 0, received.Count);
            var answer = JsonSerializer.SerializeToUtf8Bytes(new EchoAnswer(text, count(), instance), JsonSerializerOptions.Web);
            await socket.SendAsync(answer, System.Net.WebSockets.WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
        }
    }

    // The whole body, or null when it is longer than the limit.
    private static async Task<byte[]?> ReadUpToAsync(Stream body, int limit, CancellationToken cancellationToken)
    {
        using var copy = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await body.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (copy.Length + read > limit)
            {
                return null;
            }

            copy.Write(buffer, 0, read);
        }

        return copy.ToArray();
    }

    private static async Task<ISession> LoadAsync(HttpContext context)
    {
        await context.Session.LoadAsync(context.RequestAborted);
        return context.Session;
    }

    private static List<CartItem> ReadCart(ISession session)
        => session.Get(CartKey) is { } json ? JsonSerializer.Deserialize<List<CartItem>>(json, JsonSerializerOptions.Web) ?? [] : [];

    private static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));
}
