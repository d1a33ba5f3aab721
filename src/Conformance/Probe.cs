using System.Buffers.Text;
using System.Globalization;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Baton.Protocol;

namespace Baton.Conformance;

/// <summary>A step a rule needs before it can check anything did not go as the protocol says; the rule fails with this message.</summary>
internal sealed class PreconditionException(string message) : Exception(message);

/// <summary>A session the kit holds on the backend, as the gateway would: its id, the newest version and epoch, and that state.</summary>
internal sealed class KitSession(string id, long epoch)
{
    public string Id { get; } = id;

    public long Version { get; set; }

    public long Epoch { get; set; } = epoch;

    /// <summary>The state of <see cref="Version"/>, as the backend's last checkpoint carried it.</summary>
    public byte[] State { get; set; } = [];
}

/// <summary>
/// A checkpoint read without judging it: its fields as sent, and the body split at <c>len</c>. Rules that only
/// need the state use this, so a backend that gets a checkpoint's MAC wrong fails the checkpoint rules alone.
/// </summary>
internal sealed record LooseCheckpoint(IReadOnlyDictionary<string, string> Fields, long? Version, long? Epoch, int? Length, byte[] State, byte[] AppBody);

/// <summary>
/// The kit's side of the conversation: it acts as the gateway, minting grants and restores with the shared
/// secret (through <see cref="Baton.Protocol"/>, the gateway's own code), and records every answer.
/// </summary>
internal sealed class Probe : IDisposable
{
    private const int MaxBodyBytes = 64 * 1024 * 1024;
    private readonly HttpClient _http;
    private readonly string _secret;
    private readonly List<Exchange> _exchanges = [];

    public Probe(ConformanceOptions options)
    {
        Options = options;
        _secret = options.Secret;
        Keys = new ProtocolKeys(options.Secret);
        WrongKeys = new ProtocolKeys(options.Secret + "/not-the-backend-secret");
        _http = new HttpClient(new SocketsHttpHandler
        {
            UseCookies = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            ConnectTimeout = options.RequestTimeout,
            UseProxy = false,
        })
        {
            BaseAddress = options.Backend,
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public ConformanceOptions Options { get; }

    public ProtocolKeys Keys { get; }

    /// <summary>Keys of another secret: what an attacker without the secret could sign with.</summary>
    public ProtocolKeys WrongKeys { get; }

    /// <summary>The backend process's incarnation id, as its first answers named it (null when none did).</summary>
    public string? Incarnation { get; set; }

    /// <summary>Every exchange so far, in order.</summary>
    public IReadOnlyList<Exchange> Exchanges => _exchanges;

    public static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    public static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A grant header signed with the shared secret's grant key.</summary>
    public string Grant(string sid, long version, long epoch, int max = 1024 * 1024, long? timestamp = null, ProtocolKeys? keys = null)
        => new SessionGrant(sid, version, epoch, 20 * 60 * 1000, max, timestamp ?? Now()).Format(keys ?? Keys);

    public string Grant(KitSession session, int max = 1024 * 1024) => Grant(session.Id, session.Version, session.Epoch, max);

    /// <summary>A restore descriptor for <paramref name="state"/>, aimed at this backend process, fresh and with a new nonce.</summary>
    public RestoreDescriptor RestoreFor(string sid, long version, long epoch, byte[] state, string? target = null, long? timestamp = null, int? length = null)
        => new(sid, version, epoch, length ?? state.Length, Ids.Sha256(state), target ?? Incarnation ?? throw new PreconditionException("the backend named no Baton-Incarnation, so no restore can be aimed at it"), timestamp ?? Now(), Ids.New());

    /// <summary>HMAC-SHA256 of <paramref name="canonical"/> with the key of another <paramref name="purpose"/>, derived as the protocol says.</summary>
    public string MacWithPurpose(string purpose, string canonical)
    {
        var key = HKDF.DeriveKey(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(_secret), 32, salt: null, info: Encoding.ASCII.GetBytes("baton/v1/" + purpose));
        return Base64Url.EncodeToString(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(canonical)));
    }

    /// <summary>Calls an app route, with a grant header when one is given, and <c>Baton-Deltas: 1</c> when <paramref name="offerDeltas"/>.</summary>
    public Task<Exchange> CallAsync(AppRoute route, string? grant, string description, CancellationToken cancellationToken, string? jsonBody = null, bool offerDeltas = false)
    {
        var request = new HttpRequestMessage(new HttpMethod(route.Method), route.Path);
        if (grant is not null)
        {
            request.Headers.TryAddWithoutValidation(ProtocolConstants.SessionHeader, grant);
        }

        if (offerDeltas)
        {
            request.Headers.TryAddWithoutValidation(ProtocolConstants.DeltasHeader, "1");
        }

        if (jsonBody is not null)
        {
            request.Content = new StringContent(jsonBody, Encoding.UTF8, "application/json");
        }
        else if (route.Method is "POST" or "PUT" or "PATCH")
        {
            request.Content = new ByteArrayContent([]);
        }

        return SendAsync(request, $"{route} ({description})", cancellationToken, offerDeltas);
    }

    /// <summary>Sends a restore: the header as given (or none) and the body, with <c>application/octet-stream</c>.</summary>
    public Task<Exchange> RestoreAsync(string? header, byte[] body, string description, CancellationToken cancellationToken, string method = "POST")
    {
        var request = new HttpRequestMessage(new HttpMethod(method), ProtocolConstants.RestorePath);
        if (header is not null)
        {
            request.Headers.TryAddWithoutValidation(ProtocolConstants.RestoreHeader, header);
        }

        if (method != "GET")
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        }

        return SendAsync(request, $"{method} {ProtocolConstants.RestorePath} ({description})", cancellationToken);
    }

    public async Task<Exchange> SendAsync(HttpRequestMessage request, string description, CancellationToken cancellationToken, bool offeredDeltas = false)
    {
        var exchange = new Exchange(description) { OfferedDeltas = offeredDeltas };
        _exchanges.Add(exchange);
        using (request)
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(Options.RequestTimeout);
            try
            {
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                exchange.Status = (int)response.StatusCode;
                exchange.AddHeaders(response.Headers);
                exchange.AddHeaders(response.Content.Headers);
                exchange.Body = await ReadCappedAsync(await response.Content.ReadAsStreamAsync(timeout.Token), timeout.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                exchange.Error = FormattableString.Invariant($"no complete answer within {Options.RequestTimeout.TotalSeconds:0.#} s");
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException or InvalidOperationException or ProtocolViolationDetectedException)
            {
                exchange.Error = Describe(ex);
            }
        }

        return exchange;
    }

    /// <summary>The body split at the checkpoint's <c>len</c>, whatever else the checkpoint gets wrong; null without a checkpoint.</summary>
    public static LooseCheckpoint? ReadLoosely(Exchange exchange)
    {
        if (exchange.Single(ProtocolConstants.CheckpointHeader) is not { } header)
        {
            return null;
        }

        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in header.Split(';'))
        {
            var pair = part.Trim();
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                fields.TryAdd(pair[..eq], pair[(eq + 1)..]);
            }
        }

        var version = Long(fields, "ver");
        var epoch = Long(fields, "epoch");
        var length = Long(fields, "len") is { } len && len >= 0 && len <= exchange.Body.Length ? (int?)len : null;
        var state = length is { } l ? exchange.Body[..l] : [];
        var app = length is { } m ? exchange.Body[m..] : exchange.Body;
        return new LooseCheckpoint(fields, version, epoch, length, state, app);
    }

    /// <summary>
    /// Makes a change on <paramref name="session"/> with a grant of its current version and takes the state the
    /// checkpoint carries; a precondition for rules that need a session at a known version.
    /// </summary>
    public async Task<Exchange> ChangeAsync(KitSession session, string why, CancellationToken cancellationToken)
    {
        var exchange = await CallAsync(Options.ChangeRoute, Grant(session), why, cancellationToken);
        if (!exchange.Answered || exchange.Status is < 200 or > 299)
        {
            throw new PreconditionException($"{exchange.Description} was {exchange.Outcome}, expected 2xx {Said(exchange)}");
        }

        if (ReadLoosely(exchange) is not { Length: not null } checkpoint)
        {
            throw new PreconditionException($"{exchange.Description} made no readable {ProtocolConstants.CheckpointHeader} (it is '{exchange.Single(ProtocolConstants.CheckpointHeader) ?? "absent"}')");
        }

        session.Version = checkpoint.Version ?? session.Version + 1;
        session.State = checkpoint.State;
        return exchange;
    }

    /// <summary>A new session on the backend, changed <paramref name="changes"/> times under <paramref name="epoch"/>.</summary>
    public async Task<KitSession> NewSessionAsync(long epoch, int changes, string why, CancellationToken cancellationToken)
    {
        var session = new KitSession(Ids.New(), epoch);
        for (var i = 0; i < changes; i++)
        {
            await ChangeAsync(session, why, cancellationToken);
        }

        return session;
    }

    /// <summary>" (it said: ...)" with the body's start, or nothing for an empty body.</summary>
    public static string Said(Exchange exchange) => exchange.Body.Length == 0 ? string.Empty : $"(it said: {exchange.BodyText()})";

    public void Dispose() => _http.Dispose();

    private static long? Long(Dictionary<string, string> fields, string key)
        => fields.TryGetValue(key, out var text) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;

    private static async Task<byte[]> ReadCappedAsync(Stream stream, CancellationToken cancellationToken)
    {
        using var copy = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0)
        {
            if (copy.Length + read > MaxBodyBytes)
            {
                throw new ProtocolViolationDetectedException($"the body is longer than {MaxBodyBytes} bytes");
            }

            copy.Write(buffer, 0, read);
        }

        return copy.ToArray();
    }

    private static string Describe(Exception ex)
    {
        var messages = new List<string>();
        for (var e = ex; e is not null; e = e.InnerException)
        {
            if (!messages.Any(m => m.Contains(e.Message, StringComparison.Ordinal)))
            {
                messages.Add(e.Message);
            }
        }

        return string.Join(": ", messages);
    }
}

/// <summary>An answer the kit stopped reading because it broke HTTP or the kit's limits.</summary>
internal sealed class ProtocolViolationDetectedException(string message) : Exception(message);
