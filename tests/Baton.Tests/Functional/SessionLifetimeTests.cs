using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Baton.Gateway.Sessions;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Baton.Tests.Functional;

/// <summary>Gateways with non-default settings, each started for its test.</summary>
[Trait("Category", "Functional")]
public sealed class SessionLifetimeTests : IAsyncLifetime
{
    private readonly List<TestBackend> _backends = [];

    public async Task InitializeAsync()
    {
        // The shipped config names three destinations; each points at a live backend.
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task SessionIdleLongerThanTheTimeout_IsNotAdopted_AndGetsAFreshSession()
    {
        // One clock for the gateway and its backends, as on hosts with synchronised clocks.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        void UseFakeTime(WebApplicationBuilder builder) => builder.Services.AddSingleton<TimeProvider>(time);
        var backends = new List<TestBackend>();
        for (var i = 1; i <= 3; i++)
        {
            backends.Add(await TestBackend.StartAsync($"b{i}", [], UseFakeTime));
        }

        await using var cleanup = new AsyncDisposables(backends);
        await using var gateway = await TestGateway.StartAsync(backends, ["--Baton:Sessions:IdleTimeout=00:20:00"], UseFakeTime);
        using var client = gateway.NewClient();
        Assert.Equal(1, (await client.IncrementAsync()).Count);
        time.Advance(TimeSpan.FromMinutes(19));
        Assert.Equal(2, (await client.IncrementAsync()).Count);
        var before = SessionCookieOf(client, gateway);

        time.Advance(TimeSpan.FromMinutes(20));

        // Past the idle timeout the session is gone: a new id, and its counter starts again.
        Assert.Equal(1, (await client.IncrementAsync()).Count);
        Assert.NotEqual(before, SessionCookieOf(client, gateway));
    }

    [Fact]
    public async Task SessionIdleLongerThanARealShortTimeout_GetsAFreshSession()
    {
        await using var gateway = await TestGateway.StartAsync(_backends, ["--Baton:Sessions:IdleTimeout=00:00:01", "--Baton:Sessions:PurgeInterval=00:00:00.200"]);
        var pins = gateway.Services.GetRequiredService<ISessionPinTable>();
        using var client = gateway.NewClient();
        await client.IncrementAsync();
        var before = SessionCookieOf(client, gateway);
        Assert.Equal(1, pins.Count);

        // The purge loop forgets the session once it has been idle for the timeout.
        await Eventually.TrueAsync(() => pins.Count == 0, TimeSpan.FromSeconds(10));
        await client.IncrementAsync();

        Assert.NotEqual(before, SessionCookieOf(client, gateway));
    }

    [Fact]
    public async Task NewSessionBeyondMaxSessions_Is503WithRetryAfter_WhileExistingSessionsKeepWorking()
    {
        await using var gateway = await TestGateway.StartAsync(_backends, ["--Baton:Sessions:MaxSessions=2"]);
        using var first = gateway.NewClient();
        using var second = gateway.NewClient();
        await first.IncrementAsync();
        await second.IncrementAsync();

        using var third = gateway.NewRawClient();
        using var refused = await third.PostAsync(new Uri("/counter", UriKind.Relative), content: null);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Contains("Baton:Sessions:MaxSessions", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(2, (await first.IncrementAsync()).Count);
    }

    [Fact]
    public async Task GatewayFault_IsAnswered503WithRetryAfter_Never500()
    {
        await using var gateway = await TestGateway.StartAsync(_backends, configure: builder => builder.Services.AddSingleton<ISessionPinTable, FailingPinTable>());
        using var client = gateway.NewRawClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/counter");
        request.Headers.Add("Cookie", $"{TestGateway.CookieName}={new SessionCookie(new Baton.Protocol.ProtocolKeys(TestGateway.Secret)).Protect(SessionId.New())}");

        using var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task OverHttps_TheSessionCookieIsSecure_AndHostPrefixed()
    {
        var certificate = Path.Combine(TestPaths.NewFolder("cert"), "gateway.pfx");
        using (var rsa = RSA.Create(2048))
        {
            var request = new CertificateRequest("CN=127.0.0.1", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
            await File.WriteAllBytesAsync(certificate, cert.Export(X509ContentType.Pfx, "test"));
        }

        await using var gateway = await TestGateway.StartAsync(_backends,
        [
            "--urls=https://127.0.0.1:0",
            $"--Kestrel:Certificates:Default:Path={certificate}",
            "--Kestrel:Certificates:Default:Password=test",
        ]);
        Assert.Equal("https", gateway.Address.Scheme);
        using var handler = new HttpClientHandler { UseCookies = false, ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator };
        using var client = new HttpClient(handler) { BaseAddress = gateway.Address };

        using var response = await client.PostAsync(new Uri("/counter", UriKind.Relative), content: null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var cookie = Assert.Single(response.Headers.GetValues("Set-Cookie"));
        Assert.StartsWith($"__Host-{TestGateway.CookieName}=", cookie, StringComparison.Ordinal);
        var attributes = cookie.Split(';', StringSplitOptions.TrimEntries).Select(a => a.ToLowerInvariant());
        Assert.Contains("secure", attributes);
        Assert.Contains("httponly", attributes);
    }

    private static string? SessionCookieOf(HttpClient client, TestGateway gateway)
        => CookieJar.Of(client).GetCookies(gateway.Address)[TestGateway.CookieName]?.Value;

    private sealed class FailingPinTable : ISessionPinTable
    {
        public int Count => 0;

        public int AnonymousCount => 0;

        public long StateBytes => 0;

        public Task<SessionId?> RenamedToAsync(SessionId id, CancellationToken cancellationToken) => Task.FromResult<SessionId?>(null);

        public bool IsRetired(SessionId id) => false;

        public void ForgetRetired(SessionId id)
        {
        }

        public void RekeyDone(SessionId id)
        {
        }

        public KeepOutcome TryKeep(SessionId id, int stateBytes, long version, bool mayGrow = true) => throw new IOException("pin table unavailable");

        public ValueTask<SessionPin?> FindAsync(SessionId id, CancellationToken cancellationToken) => throw new IOException("pin table unavailable");

        public ValueTask<SessionPin?> FindOrLoadAsync(SessionId id, CancellationToken cancellationToken) => throw new IOException("pin table unavailable");

        public ValueTask<SessionPin> PinAsync(SessionId id, string destinationId, CancellationToken cancellationToken) => throw new IOException("pin table unavailable");

        public ValueTask<MoveClaim> ClaimAsync(SessionId id, string destinationId, TimeSpan lease, CancellationToken cancellationToken) => throw new IOException("pin table unavailable");

        public ValueTask<SessionPin?> PlacedAsync(SessionId id, string destinationId, long epoch, CancellationToken cancellationToken) => throw new IOException("pin table unavailable");

        public ValueTask AbandonAsync(SessionId id, long epoch) => ValueTask.CompletedTask;

        public ValueTask<SessionPin?> SettleAsync(SessionId id, CancellationToken cancellationToken) => throw new IOException("pin table unavailable");

        public ValueTask<int> PurgeExpiredAsync(CancellationToken cancellationToken) => ValueTask.FromResult(0);

        public IReadOnlyDictionary<string, int> CountByDestination() => new Dictionary<string, int>();

        public void RecordVersion(SessionId id, long version)
        {
        }

        public void RecordChain(SessionId id, int? deltaBytes, (int Links, long Bytes) reported)
        {
        }

        public void RequireWhole(SessionId id)
        {
        }

        public bool TakesDelta(SessionId id) => false;

        public void AdvanceEpoch(SessionId id)
        {
        }

        public void Rekey(SessionId id, SessionId renewed)
        {
        }

        public void Forget(SessionId id)
        {
        }

        public Task LoadAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
