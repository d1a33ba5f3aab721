using System.Net;
using Baton.Backend;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Backend;

/// <summary>
/// Requests of one session that overlap a move or a rotation: a change made after a response started is committed
/// once the response ends, onto the copy the request was served from and no other, and a request that waited while
/// another response rotated the session is served nothing of it.
/// </summary>
[Trait("Category", "Functional")]
public sealed class LateChangeTests : IAsyncLifetime, IDisposable
{
    private static readonly ProtocolKeys Keys = new(TestGateway.Secret);
    private TestBackend _backend = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _backend = await LibraryApp.StartAsync("b1");
        _client = new HttpClient { BaseAddress = _backend.Address };
    }

    public async Task DisposeAsync() => await _backend.DisposeAsync();

    public void Dispose() => _client.Dispose();

    [Fact]
    public async Task ALateChangeOfARequestServedBeforeTheSessionWasRestoredInALaterEpoch_IsDropped()
    {
        var sessionId = Ids.New();
        using (var first = await SendAsync(HttpMethod.Post, "/inc", sessionId, version: 0, epoch: 0))
        {
            Assert.Equal(ProtocolVerdict.Valid, CheckpointDescriptor.TryParse(first.Headers.GetValues(ProtocolConstants.CheckpointHeader).Single(), Keys, out var checkpoint));
            Assert.Equal(1, checkpoint!.Version);
        }

        // Served in epoch 0; while its response streams, the gateway moves the session here in epoch 1.
        var gate = _backend.Services.GetRequiredService<RequestGate>();
        var late = SendAsync(HttpMethod.Post, "/late-held", sessionId, version: 1, epoch: 0, HttpCompletionOption.ResponseHeadersRead);
        await gate.Entered.WaitAsync(TimeSpan.FromSeconds(10));
        using (var restored = await RestoreAsync(sessionId, version: 3, epoch: 1, CounterState(10)))
        {
            Assert.Equal(HttpStatusCode.NoContent, restored.StatusCode);
        }

        gate.Release();
        using (var answered = await late)
        {
            Assert.Equal("streaming", await answered.Content.ReadAsStringAsync());
        }

        // The restored state stands: the old epoch's change is neither merged into it nor sent as its next version.
        using var read = await SendAsync(HttpMethod.Get, "/read", sessionId, version: 3, epoch: 1);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.False(read.Headers.Contains(ProtocolConstants.CheckpointHeader), "no change of epoch 1 was made");
        Assert.Equal("10/-", await read.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task ARequestThatWaitedForItsSessionWhileAnotherResponseRotatedIt_IsServedNothingOfIt()
    {
        var sessionId = Ids.New();
        (await SendAsync(HttpMethod.Post, "/inc", sessionId, version: 0, epoch: 0)).Dispose();

        var gate = _backend.Services.GetRequiredService<RequestGate>();
        var login = SendAsync(HttpMethod.Post, "/rotate-held", sessionId, version: 1, epoch: 0);
        await gate.Entered.WaitAsync(TimeSpan.FromSeconds(10));

        // A request of the old id arrives while the login holds the session: it waits for it.
        var waiting = SendAsync(HttpMethod.Get, "/read", sessionId, version: 1, epoch: 0, arrival: true);
        await gate.Arrived.WaitAsync(TimeSpan.FromSeconds(10));
        gate.Release();

        using (var rotated = await login)
        {
            Assert.True(rotated.Headers.Contains(ProtocolConstants.SessionActionHeader));
        }

        // Refused as retired, not as stale: a gateway answers a stale copy with a restore of the dead id.
        using var old = await waiting;
        Assert.Equal(HttpStatusCode.Gone, old.StatusCode);
        Assert.Equal("sid=" + sessionId, old.Headers.GetValues(ProtocolConstants.RetiredHeader).Single());
        Assert.False(old.Headers.Contains(ProtocolConstants.StaleHeader));
        Assert.DoesNotContain("ann", await old.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var store = _backend.Services.GetRequiredService<BackendSessionStore>();
        await Eventually.TrueAsync(() => store.Count == 0, TimeSpan.FromSeconds(10), "the rotated copy should be dropped once nobody holds it");
    }

    private Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string sessionId, long version, long epoch, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead, bool arrival = false)
    {
        var request = new HttpRequestMessage(method, path);
        if (arrival)
        {
            request.Headers.Add("X-Test-Arrival", "1");
        }

        request.Headers.Add(ProtocolConstants.SessionHeader, BackendRequests.Grant(Keys, sessionId, version, epoch));
        return _client.SendAsync(request, completion);
    }

    private Task<HttpResponseMessage> RestoreAsync(string sessionId, long version, long epoch, byte[] state)
        => BackendRequests.RestoreAsync(_client, Keys, sessionId, version, epoch, state);

    private static byte[] CounterState(int count)
        => KeyedState.Encode(new Dictionary<string, byte[]> { ["n"] = [(byte)(count >> 24), (byte)(count >> 16), (byte)(count >> 8), (byte)count] });
}
