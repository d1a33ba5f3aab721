using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Baton.Gateway.Tls;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Functional;

/// <summary>
/// The gateway as an edge: TLS from PEM files with reload, HTTP/2 to clients, WebSockets (HTTP/1.1 upgrade and
/// HTTP/2 extended CONNECT) pinned to the session's backend. Backends in their own processes, killed for real.
/// </summary>
[Trait("Category", "Functional")]
public sealed class EdgeTests : IAsyncLifetime
{
    private const int MaxBody = 2_000_000;
    private readonly string _folder = TestPaths.NewFolder("tls");
    private readonly X509Certificate2 _first = TestCertificates.Create("baton-first");
    private ProcessCluster _cluster = null!;
    private Uri _https = null!;
    private Uri _http = null!;

    private string CertificatePath => Path.Combine(_folder, "gateway.crt");

    private string KeyPath => Path.Combine(_folder, "gateway.key");

    public async Task InitializeAsync()
    {
        TestCertificates.WritePem(_first, CertificatePath, KeyPath);
        _cluster = await ProcessCluster.StartAsync(
        [
            "--urls=https://127.0.0.1:0;http://127.0.0.1:0",
            $"--Baton:Tls:CertificatePath={CertificatePath}",
            $"--Baton:Tls:KeyPath={KeyPath}",
            "--Baton:Tls:ReloadCheckInterval=00:00:00.200",
            "--ReverseProxy:Clusters:demo:HttpRequest:ActivityTimeout=00:00:02",
            $"--Baton:Limits:MaxRequestBodyBytes={MaxBody}",
        ], grpc: true);
        _https = _cluster.Gateway.AddressOf("https");
        _http = _cluster.Gateway.AddressOf("http");
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        _first.Dispose();
    }

    [Fact]
    public async Task OverHttps_TheConfiguredCertificateIsServed_AndHttp2CarriesTheSessionInAHostPrefixedSecureCookie()
    {
        var served = string.Empty;
        using var client = Http2Client(new CookieContainer(), t => served = t);

        using var first = await client.PostAsync(new Uri("/counter", UriKind.Relative), content: null);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpVersion.Version20, first.Version);
        Assert.Equal(Thumbprint(_first), served);
        var cookie = Assert.Single(first.Headers.GetValues("Set-Cookie"), c => c.StartsWith("__Host-" + TestGateway.CookieName + "=", StringComparison.Ordinal));
        Assert.Contains("secure", cookie, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(2, (await client.IncrementAsync()).Count);
    }

    [Fact]
    public async Task ReplacedCertificateFiles_AreServedToNewConnectionsWithoutARestart_OpenConnectionsCarryOn_AndABadFileIsNotTaken()
    {
        var served = string.Empty;
        using var open = Http2Client(new CookieContainer(), t => served = t);
        Assert.Equal(1, (await open.IncrementAsync()).Count);
        Assert.Equal(Thumbprint(_first), served);

        using var second = TestCertificates.Create("baton-second");
        TestCertificates.WritePem(second, CertificatePath, KeyPath);
        await Eventually.TrueAsync(async () => await TestCertificates.ServedThumbprintAsync(_https) == Thumbprint(second), TimeSpan.FromSeconds(15), "new connections should get the new certificate");

        // The connection opened before the change is still the same one (no new handshake) and still served.
        served = string.Empty;
        Assert.Equal(2, (await open.IncrementAsync()).Count);
        Assert.Equal(string.Empty, served);

        // A file that does not load (here: not a certificate) leaves the current one in service.
        TestCertificates.Replace(CertificatePath, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"u8.ToArray());
        _cluster.Gateway.Services.GetRequiredService<ServerCertificate>().CheckForChange();
        Assert.Equal(Thumbprint(second), await TestCertificates.ServedThumbprintAsync(_https));

        using var third = TestCertificates.Create("baton-third");
        TestCertificates.WritePem(third, CertificatePath, KeyPath);
        await Eventually.TrueAsync(async () => await TestCertificates.ServedThumbprintAsync(_https) == Thumbprint(third), TimeSpan.FromSeconds(15), "a good file after a bad one should be taken");
    }

    [Fact]
    public async Task AnHttp2PostWithoutContentLength_CaughtByABackendKill_IsResentByteExact()
    {
        using var client = Http2Client(new CookieContainer(), _ => { });
        var before = await client.IncrementAsync();
        await _cluster.Backend(before.Instance).KillAsync();

        var body = RandomNumberGenerator.GetBytes(300_000);
        using var content = new StreamContent(new UnknownLengthStream(body));
        using var answer = await client.PostAsync(new Uri("/blob", UriKind.Relative), content);
        Assert.Null(content.Headers.ContentLength);
        Assert.Equal(HttpVersion.Version20, answer.Version);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        var stored = (await answer.Content.ReadFromJsonAsync<BlobAnswer>(JsonSerializerOptions.Web))!;
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(body)), stored.Sha256);
        Assert.Equal(body.Length, stored.Bytes);
        Assert.NotEqual(before.Instance, stored.Instance);

        Assert.Equal(stored.Sha256, (await client.BlobAsync(HttpMethod.Get)).Sha256);
        Assert.Equal(2, (await client.IncrementAsync()).Count);
    }

    [Fact]
    public Task AWebSocketOverHttp11_IsPinnedToTheSessionsBackend_ClosesWhenItDies_AndTheNextRequestKeepsTheState()
        => WebSocketAcrossAKillAsync(http2: false);

    [Fact]
    public Task AWebSocketOverHttp2ExtendedConnect_IsPinnedToTheSessionsBackend_ClosesWhenItDies_AndTheNextRequestKeepsTheState()
        => WebSocketAcrossAKillAsync(http2: true);

    [Fact]
    public async Task AGrpcStream_IsPinnedToTheSessionsBackend_EndsWhenItDies_AndTheNextCallIsRestoredOverHttp2WithTheState()
    {
        var jar = new CookieContainer();
        using var client = Http2Client(jar, _ => { });
        await client.IncrementAsync();
        var pinned = await client.IncrementAsync();

        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(_https, new Grpc.Net.Client.GrpcChannelOptions { HttpHandler = TestCertificates.Handler(_ => { }, jar) });
        var invoker = channel.CreateCallInvoker();
        using (var call = invoker.AsyncDuplexStreamingCall(Chat, host: null, new Grpc.Core.CallOptions()))
        {
            Assert.Equal(new EchoAnswer("hello", 2, pinned.Instance), await ChatAsync(call, "hello"));
            Assert.Equal(new EchoAnswer("more", 2, pinned.Instance), await ChatAsync(call, "more"));

            await _cluster.Backend(pinned.Instance).KillAsync();
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => call.ResponseStream.MoveNext(deadline.Token));
        }

        // A stream is never resent: the client calls again. The session moves within the gRPC cluster, its
        // state restored over cleartext HTTP/2, and the HTTP requests that follow go to the same new owner.
        EchoAnswer? moved = null;
        await Eventually.TrueAsync(async () =>
        {
            using var again = invoker.AsyncDuplexStreamingCall(Chat, host: null, new Grpc.Core.CallOptions());
            try
            {
                moved = await ChatAsync(again, "again");
                await again.RequestStream.CompleteAsync();
                return true;
            }
            catch (Grpc.Core.RpcException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(20), "a new call should reach the session's new backend");
        Assert.Equal(2, moved!.Count);
        Assert.NotEqual(pinned.Instance, moved.Instance);
        Assert.Equal(new CounterAnswer(3, moved.Instance), await client.IncrementAsync());
    }

    [Fact]
    public async Task ABodyClaimingToBeGrpc_StillMeetsTheSizeLimit_AsTheClientsFailure_WithNoBackendBlamed()
    {
        // YARP lifts the server's body size and rate limits for gRPC over HTTP/2; any client can say it is gRPC.
        using var client = Http2Client(new CookieContainer(), _ => { });
        await client.IncrementAsync();
        using var content = new StreamContent(new UnknownLengthStream(new byte[MaxBody + 500_000]));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        using var answer = await client.PostAsync(new Uri("/blob", UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, answer.StatusCode);
        Assert.Contains("Baton:Limits:MaxRequestBodyBytes", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.True(_cluster.Gateway.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>().TryGetCluster("demo", out var demo));
        Assert.Empty(demo.Destinations.Values.Where(d => d.Health.Passive == Yarp.ReverseProxy.Model.DestinationHealth.Unhealthy).Select(d => d.DestinationId));
        Assert.Equal(2, (await client.IncrementAsync()).Count);
    }

    [Fact]
    public async Task AWebSocketHandshakeToABackendRestartedEmpty_IsResentAfterTheRestore_ForTheBackendNeverAcceptedIt()
    {
        var jar = new CookieContainer();
        using var client = Http2Client(jar, _ => { });
        var pinned = await client.IncrementAsync();
        var owner = _cluster.Backend(pinned.Instance);
        await owner.KillAsync();
        await owner.StartAsync();

        // The new process refuses the session as stale (it holds nothing); the gateway restores it there and
        // sends the handshake again: the socket opens on the first try, with the state.
        using var invoker = new HttpMessageInvoker(TestCertificates.Handler(_ => { }, jar));
        using var socket = await ConnectAsync(jar, invoker, http2: true);
        Assert.Equal(new EchoAnswer("socket", 1, pinned.Instance), await EchoAsync(socket, "socket"));
    }

    private static readonly Grpc.Core.Marshaller<string> Utf8 = Grpc.Core.Marshallers.Create(Encoding.UTF8.GetBytes, Encoding.UTF8.GetString);

    private static readonly Grpc.Core.Method<string, string> Chat = new(Grpc.Core.MethodType.DuplexStreaming, "baton.demo.Echo", "Chat", Utf8, Utf8);

    private static async Task<EchoAnswer> ChatAsync(Grpc.Core.AsyncDuplexStreamingCall<string, string> call, string text)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await call.RequestStream.WriteAsync(text, deadline.Token);
        Assert.True(await call.ResponseStream.MoveNext(deadline.Token), "the stream should answer");
        return JsonSerializer.Deserialize<EchoAnswer>(call.ResponseStream.Current, JsonSerializerOptions.Web)!;
    }

    private async Task WebSocketAcrossAKillAsync(bool http2)
    {
        var jar = new CookieContainer();
        using var client = http2 ? Http2Client(jar, _ => { }) : HttpClientWith(jar);
        await client.IncrementAsync();
        var pinned = await client.IncrementAsync();

        using var invoker = new HttpMessageInvoker(TestCertificates.Handler(_ => { }, jar));
        using (var socket = await ConnectAsync(jar, invoker, http2))
        {
            Assert.Equal(new EchoAnswer("hello", 2, pinned.Instance), await EchoAsync(socket, "hello"));

            // The open socket holds nothing the session's other requests wait for.
            Assert.Equal(new CounterAnswer(3, pinned.Instance), await client.IncrementAsync());

            await _cluster.Backend(pinned.Instance).KillAsync();
            Assert.True(await EndsAsync(socket, TimeSpan.FromSeconds(15)), "the socket should close when its backend dies");
        }

        var after = await client.IncrementAsync();
        Assert.Equal(4, after.Count);
        Assert.NotEqual(pinned.Instance, after.Instance);

        // A new socket follows the session to its new backend.
        using var again = await ConnectAsync(jar, invoker, http2);
        Assert.Equal(new EchoAnswer("again", 4, after.Instance), await EchoAsync(again, "again"));
    }

    private async Task<ClientWebSocket> ConnectAsync(CookieContainer jar, HttpMessageInvoker invoker, bool http2)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        using var connecting = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        if (http2)
        {
            socket.Options.HttpVersion = HttpVersion.Version20;
            socket.Options.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
            await socket.ConnectAsync(new Uri($"wss://127.0.0.1:{_https.Port}/echo"), invoker, connecting.Token);
            Assert.Equal(HttpStatusCode.OK, socket.HttpStatusCode);
        }
        else
        {
            socket.Options.Cookies = jar;
            await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{_http.Port}/echo"), connecting.Token);
            Assert.Equal(HttpStatusCode.SwitchingProtocols, socket.HttpStatusCode);
        }

        return socket;
    }

    private static async Task<EchoAnswer> EchoAsync(ClientWebSocket socket, string text)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, deadline.Token);
        var buffer = new byte[4096];
        var received = await socket.ReceiveAsync(buffer, deadline.Token);
        Assert.Equal(WebSocketMessageType.Text, received.MessageType);
        return JsonSerializer.Deserialize<EchoAnswer>(buffer.AsSpan(0, received.Count), JsonSerializerOptions.Web)!;
    }

    // True when the socket ends (closed or broken) within the timeout; false if it is still open then.
    private static async Task<bool> EndsAsync(ClientWebSocket socket, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            var buffer = new byte[4096];
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, deadline.Token);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    return true;
                }
            }
        }
        catch (WebSocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private HttpClient Http2Client(CookieContainer jar, Action<string> served)
        => new(TestCertificates.Handler(served, jar))
        {
            BaseAddress = _https,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

    private HttpClient HttpClientWith(CookieContainer jar)
    {
        var client = CookieJar.WithJar(jar);
        client.BaseAddress = _http;
        return client;
    }

    private static string Thumbprint(X509Certificate2 certificate) => Convert.ToHexString(certificate.GetCertHash());

    private sealed record EchoAnswer(string Echo, int Count, string Instance);

    private sealed class UnknownLengthStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
