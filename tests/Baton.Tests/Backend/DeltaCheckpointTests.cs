using System.Net;
using System.Text;
using Baton.Protocol;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Backend;

/// <summary>
/// The .NET library's deltas, spoken to as a gateway would: where a request offers to take one (<c>Baton-Deltas</c>),
/// a change is sent as every key set and removed since the grant's version, which applied onto the state of that
/// version gives the whole state; whenever it cannot name them all, or a delta would not be smaller, the whole state.
/// </summary>
[Trait("Category", "Functional")]
public sealed class DeltaCheckpointTests : IAsyncLifetime, IDisposable
{
    private static readonly ProtocolKeys Keys = new(TestGateway.Secret);
    private TestBackend _backend = null!;
    private HttpClient _client = null!;

    public async Task InitializeAsync()
    {
        _backend = await LibraryApp.StartAsync("b1", "--Baton:Backend:MaxRemovedKeysPerSession=2");
        _client = new HttpClient { BaseAddress = _backend.Address };
    }

    public async Task DisposeAsync() => await _backend.DisposeAsync();

    public void Dispose() => _client.Dispose();

    [Fact]
    public async Task ASmallChangeToALargeSession_IsADeltaOfEveryKeyChangedSinceTheGrantsVersion()
    {
        var id = Ids.New();
        var (first, v1) = await SendAsync(id, "/keys?pad=65536&set=a=1,b=1", version: 0, offer: true);
        Assert.Equal((2, 1L), (first.MessageVersion, first.Version));

        var (second, delta2) = await SendAsync(id, "/keys?set=a=2", version: 1, offer: true);
        Assert.True(second.IsDelta);
        Assert.Equal((2L, 1L), (second.Version, second.Base!.Value));
        Assert.True(delta2.Length < 32, $"a one-key delta should be small, not {delta2.Length} bytes");
        var v2 = Applied(v1, delta2, second);
        Assert.Equal(Whole(("a", "2"), ("b", "1")), v2);

        // The gateway has stored only version 1 (version 2 is on its way): the delta names every change since 1.
        var (third, delta3) = await SendAsync(id, "/keys?set=c=3&remove=b", version: 1, offer: true);
        Assert.Equal((3L, 1L), (third.Version, third.Base!.Value));
        Assert.Equal(Whole(("a", "2"), ("c", "3")), Applied(v1, delta3, third));

        // From version 2 only the later keys, so it applies onto version 2 too.
        var (fourth, delta4) = await SendAsync(id, "/keys?set=d=4", version: 2, offer: true);
        Assert.Equal(4L, fourth.Version);
        Assert.Equal(Whole(("a", "2"), ("c", "3"), ("d", "4")), Applied(v2, delta4, fourth));
    }

    [Fact]
    public async Task WithoutAnOffer_OrFromVersionZero_OrWithASessionAction_TheStateIsWhole()
    {
        var id = Ids.New();
        var (first, _) = await SendAsync(id, "/keys?pad=65536&set=a=1", version: 0, offer: true);
        Assert.False(first.IsDelta);

        var (unoffered, state) = await SendAsync(id, "/keys?set=a=2", version: 1, offer: false);
        Assert.False(unoffered.IsDelta);
        Assert.Equal(Whole(("a", "2")), state);

        var (login, _) = await SendAsync(id, "/rotate", version: 2, offer: true);
        Assert.False(login.IsDelta);
    }

    [Fact]
    public async Task ADeltaOfMoreThanHalfTheWholeState_IsSentWhole()
    {
        // One key that is the whole state: the delta would be a byte longer.
        var id = Ids.New();
        await SendAsync(id, "/keys?set=a=1", version: 0, offer: true);
        var (second, state) = await SendAsync(id, "/keys?set=a=2", version: 1, offer: true);
        Assert.False(second.IsDelta);
        Assert.Equal(KeyedState.Encode(new Dictionary<string, byte[]> { ["a"] = Encoding.UTF8.GetBytes("2") }), state);

        // Two of three keys of the same size changing: the delta is smaller than the state, but more than half of it.
        var other = Ids.New();
        await SendAsync(other, "/keys?set=a=1111111111,b=1111111111,c=1111111111", version: 0, offer: true);
        var (two, _) = await SendAsync(other, "/keys?set=a=2222222222,b=2222222222", version: 1, offer: true);
        Assert.False(two.IsDelta);

        // One of the three: a third of it, a delta.
        var (one, _) = await SendAsync(other, "/keys?set=c=3333333333", version: 2, offer: true);
        Assert.True(one.IsDelta);
    }

    [Fact]
    public async Task ARestoredCopy_CountsChangesOnlyFromTheRestoredVersion()
    {
        var id = Ids.New();
        var restored = Whole(("a", "1"));
        using (var restore = await RestoreAsync(id, version: 5, epoch: 1, restored))
        {
            Assert.Equal(HttpStatusCode.NoContent, restore.StatusCode);
        }

        // Version 4 is older than the copy: which keys changed between 4 and 5 is not known here.
        var (older, _) = await SendAsync(id, "/keys?set=b=2", version: 4, offer: true, epoch: 1);
        Assert.False(older.IsDelta);

        var (fromRestore, delta) = await SendAsync(id, "/keys?set=c=3", version: 6, offer: true, epoch: 1);
        Assert.True(fromRestore.IsDelta);
        Assert.Equal(Whole(("a", "1"), ("b", "2"), ("c", "3")), Applied(Whole(("a", "1"), ("b", "2")), delta, fromRestore));
    }

    [Fact]
    public async Task AForgottenRemoval_MakesAWholeState_ForAnyBaseBeforeIt()
    {
        // At most two removed keys are remembered (Baton:Backend:MaxRemovedKeysPerSession=2).
        var id = Ids.New();
        await SendAsync(id, "/keys?pad=65536&set=a=1,b=1,c=1", version: 0, offer: true);
        await SendAsync(id, "/keys?remove=a", version: 1, offer: true);
        var (third, _) = await SendAsync(id, "/keys?remove=b", version: 2, offer: true);
        Assert.True(third.IsDelta);

        // Removing c forgets the removal of a (version 2): from version 1 only a whole state says a is gone, while
        // from version 2 on a delta still names every removal.
        var (fromThree, _) = await SendAsync(id, "/keys?remove=c", version: 3, offer: true);
        Assert.True(fromThree.IsDelta);
        var (fromTwo, delta) = await SendAsync(id, "/keys?set=e=5", version: 2, offer: true);
        Assert.True(fromTwo.IsDelta);
        Assert.Equal(Whole(("e", "5")), Applied(Whole(("b", "1"), ("c", "1")), delta, fromTwo));
        var (fromOne, state) = await SendAsync(id, "/keys?set=f=6", version: 1, offer: true);
        Assert.False(fromOne.IsDelta);
        Assert.Equal(Whole(("e", "5"), ("f", "6")), state);
    }

    private static byte[] Applied(byte[] state, byte[] delta, CheckpointDescriptor checkpoint)
    {
        Assert.True(KeyedState.TryApply(state, delta, out var applied), "the delta should apply");
        Assert.Equal(checkpoint.StateSize, applied.Length);
        return applied;
    }

    // The state of these string keys beside the 64 KiB pad the tests store first.
    private static byte[] Whole(params (string Key, string Value)[] keys)
    {
        var values = keys.ToDictionary(k => k.Key, k => Encoding.UTF8.GetBytes(k.Value));
        values["pad"] = LibraryApp.BigBody(65536);
        return KeyedState.Encode(values);
    }

    private async Task<(CheckpointDescriptor Checkpoint, byte[] Body)> SendAsync(string sessionId, string path, long version, bool offer, long epoch = 0)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path);
        request.Headers.Add(ProtocolConstants.SessionHeader, BackendRequests.Grant(Keys, sessionId, version, epoch));
        if (offer)
        {
            request.Headers.Add(ProtocolConstants.DeltasHeader, "1");
        }

        using var response = await _client.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(ProtocolVerdict.Valid, CheckpointDescriptor.TryParse(response.Headers.GetValues(ProtocolConstants.CheckpointHeader).Single(), Keys, out var checkpoint));
        var body = await response.Content.ReadAsByteArrayAsync();
        var state = body[..checkpoint!.Length];
        Assert.Equal(checkpoint.Sha256, Ids.Sha256(state));
        return (checkpoint, state);
    }

    private Task<HttpResponseMessage> RestoreAsync(string sessionId, long version, long epoch, byte[] state)
        => BackendRequests.RestoreAsync(_client, Keys, sessionId, version, epoch, state);
}
