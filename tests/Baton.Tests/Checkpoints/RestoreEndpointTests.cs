using System.Net;
using Baton.Backend;
using Baton.Protocol;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Checkpoints;

/// <summary>The backend's restore channel accepts only authentic, fresh, first-time restores meant for it.</summary>
[Trait("Category", "Functional")]
public sealed class RestoreEndpointTests : IAsyncLifetime, IDisposable
{
    private static readonly ProtocolKeys Keys = new(TestGateway.Secret);
    private TestBackend _backend = null!;
    private HttpClient _client = null!;
    private string _incarnation = null!;

    public async Task InitializeAsync()
    {
        _backend = await TestBackend.StartAsync("b1");
        _client = new HttpClient { BaseAddress = _backend.Address };
        using var health = await _client.GetAsync(new Uri("/health", UriKind.Relative));
        _incarnation = health.Headers.GetValues(ProtocolConstants.IncarnationHeader).Single();
    }

    public async Task DisposeAsync() => await _backend.DisposeAsync();

    public void Dispose() => _client.Dispose();

    [Fact]
    public async Task AValidRestore_InstallsTheState_WhichTheNextGrantedRequestSees()
    {
        var sessionId = Ids.New();
        var state = CounterState(41);

        using var restored = await SendAsync(Restore(sessionId, 7, state), state);
        Assert.Equal(HttpStatusCode.NoContent, restored.StatusCode);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/counter");
        request.Headers.Add(ProtocolConstants.SessionHeader, new SessionGrant(sessionId, 7, 0, 60_000, 1 << 20, Now()).Format(Keys));
        using var response = await _client.SendAsync(request);
        Assert.Contains("\"count\":42", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var checkpoint = response.Headers.GetValues(ProtocolConstants.CheckpointHeader).Single();
        Assert.Equal(ProtocolVerdict.Valid, CheckpointDescriptor.TryParse(checkpoint, Keys, out var descriptor));
        Assert.Equal(8, descriptor!.Version);
    }

    [Fact]
    public async Task AReplayedRestore_IsRefused409()
    {
        var state = CounterState(1);
        var header = Restore(Ids.New(), 1, state);

        using var first = await SendAsync(header, state);
        using var replay = await SendAsync(header, state);

        Assert.Equal(HttpStatusCode.NoContent, first.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, replay.StatusCode);
    }

    public static TheoryData<string, int> BadRestores => new()
    {
        { "missing header", 401 },
        { "wrong secret", 401 },
        { "altered version", 401 },
        { "another instance", 403 },
        { "too old", 401 },
        { "from the future", 401 },
        { "body differs from digest", 400 },
        { "malformed header", 400 },
        { "older than held", 409 },
    };

    [Theory]
    [MemberData(nameof(BadRestores))]
    public async Task ABadRestore_IsRefusedWithAClearStatus_AndChangesNothing(string kind, int status)
    {
        var sessionId = Ids.New();
        var state = CounterState(5);
        var body = state;
        string? header = Restore(sessionId, 3, state);
        switch (kind)
        {
            case "missing header":
                header = null;
                break;
            case "wrong secret":
                header = new RestoreDescriptor(sessionId, 3, 0, state.Length, Ids.Sha256(state), _incarnation, Now(), Ids.New()).Format(new ProtocolKeys("another-secret-0123456789abcdef0123456789"));
                break;
            case "altered version":
                header = header.Replace("ver=3", "ver=9", StringComparison.Ordinal);
                break;
            case "another instance":
                header = new RestoreDescriptor(sessionId, 3, 0, state.Length, Ids.Sha256(state), Ids.New(), Now(), Ids.New()).Format(Keys);
                break;
            case "too old":
                header = new RestoreDescriptor(sessionId, 3, 0, state.Length, Ids.Sha256(state), _incarnation, Now() - 600_000, Ids.New()).Format(Keys);
                break;
            case "from the future":
                header = new RestoreDescriptor(sessionId, 3, 0, state.Length, Ids.Sha256(state), _incarnation, Now() + 600_000, Ids.New()).Format(Keys);
                break;
            case "body differs from digest":
                body = CounterState(6);
                break;
            case "malformed header":
                header = "v=1; sid=nope";
                break;
            case "older than held":
                using (var newer = await SendAsync(Restore(sessionId, 10, CounterState(99)), CounterState(99)))
                {
                    Assert.Equal(HttpStatusCode.NoContent, newer.StatusCode);
                }

                break;
        }

        using var response = await SendAsync(header, body);

        Assert.Equal(status, (int)response.StatusCode);
        Assert.False(string.IsNullOrWhiteSpace(await response.Content.ReadAsStringAsync()), "a refusal says why");
        Assert.Equal(kind == "older than held" ? 99 : 0, await CountOfAsync(sessionId, kind == "older than held" ? 10 : 0));
    }

    [Fact]
    public async Task ARequestWithAForgedGrant_IsRefused401()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/counter");
        request.Headers.Add(ProtocolConstants.SessionHeader, new SessionGrant(Ids.New(), 0, 0, 60_000, 1 << 20, Now()).Format(new ProtocolKeys("another-secret-0123456789abcdef0123456789")));

        using var response = await _client.SendAsync(request);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    private async Task<int> CountOfAsync(string sessionId, long gatewayVersion)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/counter");
        request.Headers.Add(ProtocolConstants.SessionHeader, new SessionGrant(sessionId, gatewayVersion, 0, 60_000, 1 << 20, Now()).Format(Keys));
        using var response = await _client.SendAsync(request);
        var json = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return json.RootElement.GetProperty("count").GetInt32();
    }

    private string Restore(string sessionId, long version, byte[] state)
        => new RestoreDescriptor(sessionId, version, 0, state.Length, Ids.Sha256(state), _incarnation, Now(), Ids.New()).Format(Keys);

    private Task<HttpResponseMessage> SendAsync(string? header, byte[] body)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, ProtocolConstants.RestorePath) { Content = new ByteArrayContent(body) };
        if (header is not null)
        {
            request.Headers.TryAddWithoutValidation(ProtocolConstants.RestoreHeader, header);
        }

        return _client.SendAsync(request);
    }

    private static byte[] CounterState(int count)
        => KeyedState.Encode(new Dictionary<string, byte[]> { ["counter"] = [(byte)(count >> 24), (byte)(count >> 16), (byte)(count >> 8), (byte)count] });

    private static long Now() => ProtocolTime.Now(TimeProvider.System);
}
