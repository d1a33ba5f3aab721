using System.Net;
using System.Net.WebSockets;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Backend;

/// <summary>The backend library around a WebSocket: a change it refuses before the socket is accepted is the answer.</summary>
[Trait("Category", "Functional")]
public sealed class WebSocketSessionTests : IAsyncLifetime
{
    private TestBackend _backend = null!;
    private TestGateway _gateway = null!;

    public async Task InitializeAsync()
    {
        _backend = await LibraryApp.StartAsync("b1");
        _gateway = await TestGateway.StartAsync([_backend]);
    }

    public async Task DisposeAsync()
    {
        await _gateway.DisposeAsync();
        await _backend.DisposeAsync();
    }

    [Fact]
    public async Task AChangeTooLargeToKeep_BeforeAWebSocketIsAccepted_IsAnswered413_AndNoSocketOpens()
    {
        var jar = new CookieContainer();
        using var client = _gateway.ClientWithJar(jar);
        using (var increment = await client.PostAsync(new Uri("/inc", UriKind.Relative), content: null))
        {
            increment.EnsureSuccessStatusCode();
        }

        using var socket = new ClientWebSocket();
        socket.Options.Cookies = jar;
        socket.Options.CollectHttpResponseDetails = true;
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"ws://127.0.0.1:{_gateway.Address.Port}/ws-oversized"), deadline.Token));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, socket.HttpStatusCode);
        Assert.Equal("1/-", await client.GetStringAsync(new Uri("/read", UriKind.Relative)));
    }
}
