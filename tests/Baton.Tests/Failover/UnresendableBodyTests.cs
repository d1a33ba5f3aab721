using System.Net;
using System.Security.Cryptography;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace Baton.Tests.Failover;

/// <summary>
/// A request the gateway cannot send again — its body over the resend buffer or streamed (a gRPC call), or its
/// attempts used up — whose backend fails is answered 503 with Retry-After, counted and logged, and never
/// resent; the session moves all the same, so the next request is served with its state. Real DemoBackends
/// whose pipeline fails on cue: they read part of a body, then reset the connection.
/// </summary>
[Trait("Category", "Functional")]
public sealed class UnresendableBodyTests : IAsyncLifetime, IDisposable
{
    private const int ResendBuffer = 64 * 1024;
    private const int ReadBeforeFailing = 16 * 1024;

    // Failing paths, served by no backend: every backend reads part of the body, then resets the connection.
    private const string Upload = "/upload";
    private const string Flaky = "/flaky";

    private readonly List<TestBackend> _backends = [];
    private readonly LogCapture _logs = new();
    private readonly TaskCompletionSource _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TestGateway? _gateway;
    private int _seen;

    private TestGateway Gateway => _gateway!;

    /// <summary>How many times any backend received one of the failing requests.</summary>
    private int Seen => Volatile.Read(ref _seen);

    public async Task InitializeAsync()
    {
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}", [], BackendHook.Before(FailOnCueAsync)));
        }
    }

    public async Task DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }

        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    public void Dispose() => _logs.Dispose();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ABodyOverTheResendBuffer_WhoseBackendFailsWhileItArrives_IsAnswered503WithRetryAfter_NotResent_AndTheSessionMovesAllTheSame(bool withContentLength)
    {
        await StartGatewayAsync();
        using var client = Gateway.NewClient();
        await client.IncrementAsync();
        var owner = (await client.IncrementAsync()).Instance;
        using var refused = new InstrumentCounter(Gateway, "baton.failover.refused", "baton.reason", "body_not_buffered");

        // Over the buffer either way: with a Content-Length it streams at once; chunked, once the gateway has read
        // past the buffer. The rest is sent only after the backend failed: it was in flight when it did.
        var body = RandomNumberGenerator.GetBytes(ResendBuffer * 3);
        using var content = new GatedContent(body, ResendBuffer * 3 / 2, _failed.Task, withContentLength);
        using var answer = await client.PutAsync(new Uri(Upload, UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
        Assert.NotNull(answer.Headers.RetryAfter);
        Assert.Equal(1, Seen);
        Assert.Equal(1, refused.Total);
        Assert.Single(_logs.Lines, l => l.Contains("[4008]", StringComparison.Ordinal) && l.Contains("too large or streamed", StringComparison.Ordinal));

        var after = await client.ReadCounterAsync();
        Assert.Equal(2, after.Count);
        Assert.NotEqual(owner, after.Instance);
        Assert.Equal(1, Seen);
    }

    [Fact]
    public async Task AGrpcCallOfASessionWhoseBackendIsGone_IsAnswered503WithRetryAfter_NotResent_AndTheSessionMovesAllTheSame()
    {
        await StartGatewayAsync();
        using var client = Gateway.NewClient();
        await client.IncrementAsync();
        var owner = (await client.IncrementAsync()).Instance;
        using var refused = new InstrumentCounter(Gateway, "baton.failover.refused", "baton.reason", "body_not_buffered");
        await StopAsync(owner);

        // A gRPC call's messages stream from the start: never kept, so never resent, even where nothing was sent.
        using var content = new ByteArrayContent([0, 0, 0, 0, 2, 8, 1]);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        using var answer = await client.PostAsync(new Uri(Upload, UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
        Assert.NotNull(answer.Headers.RetryAfter);
        Assert.Equal(0, Seen);
        Assert.Equal(1, refused.Total);
        Assert.Single(_logs.Lines, l => l.Contains("[4008]", StringComparison.Ordinal) && l.Contains("gRPC", StringComparison.Ordinal));

        var after = await client.ReadCounterAsync();
        Assert.Equal(2, after.Count);
        Assert.NotEqual(owner, after.Instance);
    }

    [Fact]
    public async Task AGrpcCallWhoseBackendFailsMidCall_IsAnswered502AsOneThatMayHaveBeenApplied_NotResent_AndTheSessionMovesAllTheSame()
    {
        await StartGatewayAsync();
        using var client = Gateway.NewClient();
        await client.IncrementAsync();
        var owner = (await client.IncrementAsync()).Instance;
        using var notResent = new InstrumentCounter(Gateway, "baton.failover.refused", "baton.reason", "not_resent");
        using var notBuffered = new InstrumentCounter(Gateway, "baton.failover.refused", "baton.reason", "body_not_buffered");

        // A call (a POST without Idempotency-Key) the backend had begun to read may have been applied: that rule
        // comes first, whatever the body.
        var body = RandomNumberGenerator.GetBytes(ReadBeforeFailing * 4);
        using var content = new GatedContent(body, ReadBeforeFailing * 2, _failed.Task, withLength: false);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        using var answer = await client.PostAsync(new Uri(Upload, UriKind.Relative), content);

        Assert.Equal(HttpStatusCode.BadGateway, answer.StatusCode);
        Assert.Contains("not resent", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1, Seen);
        Assert.Equal((1, 0), (notResent.Total, notBuffered.Total));
        Assert.Single(_logs.Lines, l => l.Contains("[4005]", StringComparison.Ordinal));

        var after = await client.ReadCounterAsync();
        Assert.Equal(2, after.Count);
        Assert.NotEqual(owner, after.Instance);
        Assert.Equal(1, Seen);
    }

    [Fact]
    public async Task AResendableRequestWithItsAttemptsUsedUp_IsAnswered503WithRetryAfter_NotResent_AndTheSessionMovesAllTheSame()
    {
        await StartGatewayAsync("--Baton:Failover:MaxAttempts=1");
        using var client = Gateway.NewClient();
        await client.IncrementAsync();
        var owner = (await client.IncrementAsync()).Instance;
        using var exhausted = new InstrumentCounter(Gateway, "baton.failover.refused", "baton.reason", "attempts_exhausted");

        // A GET may be resent anywhere, but one attempt is all it is allowed.
        using var answer = await client.GetAsync(new Uri(Flaky, UriKind.Relative));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
        Assert.NotNull(answer.Headers.RetryAfter);
        Assert.Equal(1, Seen);
        Assert.Equal(1, exhausted.Total);
        Assert.Single(_logs.Lines, l => l.Contains("[4008]", StringComparison.Ordinal) && l.Contains("1 attempts made", StringComparison.Ordinal));

        var after = await client.ReadCounterAsync();
        Assert.Equal(2, after.Count);
        Assert.NotEqual(owner, after.Instance);
    }

    private async Task StartGatewayAsync(params string[] extraArgs)
        => _gateway = await TestGateway.StartAsync(
            _backends,
            [
                // Failures come from the requests themselves: no probe may mark a backend down first.
                "--ReverseProxy:Clusters:demo:HealthCheck:Active:Enabled=false",
                $"--Baton:Failover:MaxBufferedRequestBytes={ResendBuffer}",
                .. extraArgs,
            ],
            _logs.AttachTo);

    private async Task StopAsync(string instance)
    {
        var backend = _backends.Single(b => b.InstanceId == instance);
        _backends.Remove(backend);
        await backend.DisposeAsync();
    }

    private async Task FailOnCueAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Request.Path != Upload && context.Request.Path != Flaky)
        {
            await next(context);
            return;
        }

        Interlocked.Increment(ref _seen);
        var part = new byte[ReadBeforeFailing];
        await context.Request.Body.ReadAtLeastAsync(part, part.Length, throwOnEndOfStream: false, context.RequestAborted);
        context.Abort();
        _failed.TrySetResult();
    }

    /// <summary>A body sent in two parts: the second only once <paramref name="gate"/> completes. Chunked unless it states its length.</summary>
    private sealed class GatedContent(byte[] body, int first, Task gate, bool withLength) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            await stream.WriteAsync(body.AsMemory(0, first), cancellationToken);
            await stream.FlushAsync(cancellationToken);
            await gate.WaitAsync(TimeSpan.FromSeconds(15), cancellationToken);
            await stream.WriteAsync(body.AsMemory(first), cancellationToken);
        }

        protected override bool TryComputeLength(out long length)
        {
            length = body.Length;
            return withLength;
        }
    }
}
