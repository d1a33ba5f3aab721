using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;

namespace Baton.LoadTest;

/// <summary>How one request ended.</summary>
/// <param name="Status">The HTTP status, or 0 when no answer came (refused, reset, timed out).</param>
/// <param name="Origin">Who answered an error: <c>backend</c>, <c>gateway</c> or <c>transport</c>; empty on success.</param>
/// <param name="Verdict">What the answer says about the session (Ok when it was not checked).</param>
internal readonly record struct Outcome(int Status, string Origin, Verdict Verdict)
{
    public bool IsSuccess => Status is >= 200 and < 300 && Verdict == Verdict.Ok;
}

/// <summary>
/// One simulated user: its own cookie jar and connection, and a model of what its session must hold. Its
/// flow is a shopping cart: it stores a blob of the configured state size once, then adds items and reads
/// the cart (and now and then the blob), checking every answer against its model. Never used by two
/// requests at once.
/// </summary>
internal sealed class VirtualUser : IDisposable
{
    private const int Skus = 8;
    private readonly HttpClient _client;
    private readonly Random _random;
    private readonly int _stateBytes;
    private Dictionary<string, int> _cart = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _unconfirmed = new(StringComparer.Ordinal);
    private string? _blobSha256;
    private int _blobBytes;
    private int _connections;
    private bool _reconnected;

    public VirtualUser(int id, Uri target, int stateBytes, TimeSpan requestTimeout, int seed)
    {
        Id = id;
        _stateBytes = stateBytes;
        _random = new Random(seed);
        var handler = new SocketsHttpHandler
        {
            UseCookies = true,
            CookieContainer = new CookieContainer(),
            MaxConnectionsPerServer = 1,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            UseProxy = false,
            ConnectCallback = ConnectAsync,
        };
        _client = new HttpClient(handler) { BaseAddress = target, Timeout = requestTimeout };
    }

    public int Id { get; }

    /// <summary>Whether this user has ever seen its session lost, gone stale or mixed up.</summary>
    public bool EverLost { get; private set; }

    public bool EverStale { get; private set; }

    public bool EverMismatched { get; private set; }

    /// <summary>The first request of the flow: stores the user's state blob (a write).</summary>
    public async Task<Outcome> SetUpAsync(CancellationToken cancellationToken)
    {
        var bytes = _stateBytes;
        var (outcome, answer) = await SendAsync<BlobAnswer>(HttpMethod.Post, $"/blob?bytes={bytes}", null, cancellationToken);
        if (answer is not null)
        {
            (_blobSha256, _blobBytes) = (answer.Sha256, answer.Bytes);
        }

        return outcome;
    }

    /// <summary>One step of the flow: a write (add an item) or a read (the cart, or one time in five the blob).</summary>
    public Task<Outcome> StepAsync(bool write, CancellationToken cancellationToken)
    {
        if (_blobSha256 is null)
        {
            return SetUpAsync(cancellationToken);
        }

        if (write)
        {
            return AddItemAsync(cancellationToken);
        }

        return _random.Next(5) == 0 ? ReadBlobAsync(cancellationToken) : ReadCartAsync(cancellationToken);
    }

    /// <summary>Reads back the whole session and checks it (used once at the end of a run).</summary>
    public async Task<Outcome> VerifyAsync(CancellationToken cancellationToken)
    {
        var cart = await ReadCartAsync(cancellationToken);
        return cart.IsSuccess ? await ReadBlobAsync(cancellationToken) : cart;
    }

    public void Dispose() => _client.Dispose();

    private async Task<Outcome> AddItemAsync(CancellationToken cancellationToken)
    {
        var sku = $"sku-{_random.Next(Skus)}";
        var (outcome, answer) = await SendAsync<CartAnswer>(HttpMethod.Post, "/cart/items", new CartItem(sku, 1), cancellationToken);

        // HttpClient sends a request again on a new connection when the one it used closed before any byte of the
        // answer (a gateway that died with it in flight): the attempt on the broken connection may have been made too.
        var mayBeTwice = _reconnected ? 1 : 0;
        if (answer is null)
        {
            // The write may or may not have happened: either is fine later.
            _unconfirmed[sku] = _unconfirmed.GetValueOrDefault(sku) + 1 + mayBeTwice;
            return outcome;
        }

        if (mayBeTwice > 0)
        {
            _unconfirmed[sku] = _unconfirmed.GetValueOrDefault(sku) + mayBeTwice;
        }

        var actual = ToCart(answer);
        var verdict = SessionChecker.CheckAdd(_cart, sku, actual);
        if (verdict != Verdict.Ok && _unconfirmed.Count > 0 && SessionChecker.WithinUnconfirmed(SessionChecker.Add(_cart, sku), _unconfirmed, actual))
        {
            verdict = Verdict.Ok;
        }

        return Settle(outcome, verdict, actual);
    }

    private async Task<Outcome> ReadCartAsync(CancellationToken cancellationToken)
    {
        var (outcome, answer) = await SendAsync<CartAnswer>(HttpMethod.Get, "/cart", null, cancellationToken);
        if (answer is null)
        {
            return outcome;
        }

        var actual = ToCart(answer);
        var verdict = SessionChecker.CheckCart(_cart, actual);
        if (verdict != Verdict.Ok && _unconfirmed.Count > 0 && SessionChecker.WithinUnconfirmed(_cart, _unconfirmed, actual))
        {
            verdict = Verdict.Ok;
        }

        return Settle(outcome, verdict, actual);
    }

    private async Task<Outcome> ReadBlobAsync(CancellationToken cancellationToken)
    {
        var (outcome, answer) = await SendAsync<BlobAnswer>(HttpMethod.Get, "/blob", null, cancellationToken);
        if (answer is null)
        {
            return outcome;
        }

        var verdict = SessionChecker.CheckBlob(_blobSha256, _blobBytes, answer.Sha256, answer.Bytes);
        if (verdict != Verdict.Ok)
        {
            // Count it once, then expect what the server has now.
            (_blobSha256, _blobBytes) = (answer.Sha256, answer.Bytes);
            Remember(verdict);
        }

        return outcome with { Verdict = verdict };
    }

    // A checked answer: remember a bad verdict, then take the server's cart as the truth from here on, so
    // one loss is counted once.
    private Outcome Settle(Outcome outcome, Verdict verdict, Dictionary<string, int> actual)
    {
        _cart = actual;
        _unconfirmed.Clear();
        Remember(verdict);
        return outcome with { Verdict = verdict };
    }

    private void Remember(Verdict verdict)
    {
        EverLost |= verdict == Verdict.Lost;
        EverStale |= verdict == Verdict.Stale;
        EverMismatched |= verdict == Verdict.Mismatch;
    }

    private static Dictionary<string, int> ToCart(CartAnswer answer)
    {
        var cart = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var item in answer.Items ?? [])
        {
            cart[item.Sku] = cart.GetValueOrDefault(item.Sku) + item.Qty;
        }

        return cart;
    }

    private async Task<(Outcome Outcome, T? Answer)> SendAsync<T>(HttpMethod method, string path, object? body, CancellationToken cancellationToken)
        where T : class
    {
        var connectionsBefore = Volatile.Read(ref _connections);
        try
        {
            using var request = new HttpRequestMessage(method, new Uri(path, UriKind.Relative));
            if (body is not null)
            {
                request.Content = JsonContent.Create(body, options: JsonSerializerOptions.Web);

                // The cart's state lives only in the session, so sending an add again after a failure is safe; the
                // key says so to a gateway that would otherwise not resend a POST that may have been processed.
                request.Headers.Add("Idempotency-Key", Guid.NewGuid().ToString("N"));
            }

            using var response = await _client.SendAsync(request, cancellationToken);
            var status = (int)response.StatusCode;
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                return (new Outcome(status, OriginOf(text), Verdict.Ok), null);
            }

            var answer = JsonSerializer.Deserialize<T>(text, JsonSerializerOptions.Web);
            return answer is null
                ? (new Outcome(status, "backend", Verdict.Mismatch), null)
                : (new Outcome(status, string.Empty, Verdict.Ok), answer);
        }
        catch (JsonException)
        {
            // A 2xx whose body is not the answer the endpoint gives: mixed-up data.
            Remember(Verdict.Mismatch);
            return (new Outcome(200, "backend", Verdict.Mismatch), null);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return (new Outcome(0, "transport", Verdict.Ok), null);
        }
        finally
        {
            // A connection opened during this request while the user already had one: the old one broke under it.
            _reconnected = connectionsBefore > 0 && Volatile.Read(ref _connections) > connectionsBefore;
        }
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _connections);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    // The demo backend puts its instance name in every answer, errors included; the gateway's own answers
    // (and YARP's) do not carry one.
    private static string OriginOf(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("instance", out _) ? "backend" : "gateway";
        }
        catch (JsonException)
        {
            return "gateway";
        }
    }

    private sealed record CartItem(string Sku, int Qty);

    private sealed record CartAnswer(IReadOnlyList<CartItem>? Items, string Instance);

    private sealed record BlobAnswer(string Sha256, int Bytes, string Instance);
}
