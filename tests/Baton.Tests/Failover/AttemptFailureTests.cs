using Baton.Gateway;
using Baton.Gateway.Failover;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Baton.Tests.Failover;

/// <summary>Who a failed attempt is blamed on: pure logic over the request's features.</summary>
[Trait("Category", "Unit")]
public sealed class AttemptFailureTests
{
    [Theory]
    [InlineData(ForwarderError.Request)]
    [InlineData(ForwarderError.RequestTimedOut)]
    [InlineData(ForwarderError.RequestBodyDestination)]
    [InlineData(ForwarderError.ResponseHeaders)]
    [InlineData(ForwarderError.ResponseBodyDestination)]
    [InlineData(ForwarderError.UpgradeRequestDestination)]
    [InlineData(ForwarderError.UpgradeResponseDestination)]
    public void Classify_ADestinationSideError_BlamesTheDestination(ForwarderError error)
        => Assert.Equal(FailureParty.Destination, AttemptFailure.Classify(new DefaultHttpContext(), new ErrorOf(error)).Party);

    [Theory]
    [InlineData(ForwarderError.RequestBodyClient)]
    [InlineData(ForwarderError.ResponseBodyClient)]
    [InlineData(ForwarderError.RequestCanceled)]
    [InlineData(ForwarderError.RequestBodyCanceled)]
    [InlineData(ForwarderError.ResponseBodyCanceled)]
    [InlineData(ForwarderError.UpgradeRequestClient)]
    [InlineData(ForwarderError.UpgradeResponseClient)]
    [InlineData(ForwarderError.UpgradeActivityTimeout)]
    public void Classify_AClientSideError_BlamesTheClient(ForwarderError error)
        => Assert.Equal(FailureParty.Client, AttemptFailure.Classify(new DefaultHttpContext(), new ErrorOf(error)).Party);

    [Fact]
    public void Classify_ABodyTheDestinationStoppedReadingAfterItAnswered_IsNoFailureOfTheDestination()
    {
        var context = new DefaultHttpContext();
        context.Features.Set<Microsoft.AspNetCore.Http.Features.IHttpResponseFeature>(new StartedResponse());

        Assert.Equal(FailureParty.None, AttemptFailure.Classify(context, new ErrorOf(ForwarderError.RequestBodyDestination)).Party);
    }

    [Fact]
    public void Classify_AnyErrorOfARequestWhoseClientIsGone_BlamesTheClient()
    {
        using var aborted = new CancellationTokenSource();
        aborted.Cancel();
        var context = new DefaultHttpContext { RequestAborted = aborted.Token };

        Assert.Equal(new AttemptFailure(FailureParty.Client, "aborted", 400), AttemptFailure.Classify(context, new ErrorOf(ForwarderError.Request)));
    }

    [Fact]
    public async Task Classify_ATimeoutWhileTheBodyWaitedOnTheClient_IsTheClientsStall_AndOnceTheBodyArrivedTheDestinations()
    {
        var context = new DefaultHttpContext();
        var body = new ClientBodyStream(new StalledStream(), TimeSpan.FromHours(1), long.MaxValue, TimeProvider.System);
        context.Features.Set(body);
        using var cancelled = new CancellationTokenSource();
        var read = body.ReadAsync(new byte[16], cancelled.Token).AsTask();
        cancelled.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read);

        Assert.Equal(new AttemptFailure(FailureParty.Client, "body_stalled", 408), AttemptFailure.Classify(context, new ErrorOf(ForwarderError.RequestTimedOut)));

        context.Features.Set(new ClientBodyStream(new MemoryStream([1, 2, 3]), TimeSpan.FromHours(1), long.MaxValue, TimeProvider.System));
        Assert.Equal(3, await context.Features.Get<ClientBodyStream>()!.ReadAsync(new byte[16]));
        Assert.Equal(FailureParty.Destination, AttemptFailure.Classify(context, new ErrorOf(ForwarderError.RequestTimedOut)).Party);
    }

    [Theory]
    [InlineData(413, "body_too_large")]
    [InlineData(408, "body_too_slow")]
    [InlineData(400, "body_malformed")]
    public void Classify_KestrelsVerdictOnTheBody_KeepsItsStatus(int status, string reason)
    {
        var error = new ErrorOf(ForwarderError.RequestBodyClient, new AggregateException(new BadHttpRequestException("bad", status), new IOException()));

        Assert.Equal(new AttemptFailure(FailureParty.Client, reason, status), AttemptFailure.Classify(new DefaultHttpContext(), error));
    }

    [Fact]
    public void Classify_AnErrorAfterTheGatewayFlaggedItsOwnFault_BlamesTheGateway_EvenWhenYarpReportsTheResponse()
    {
        var context = new DefaultHttpContext();
        AttemptSignals.GatewayFailed(context, "pin_not_stored");

        Assert.Equal(new AttemptFailure(FailureParty.Gateway, "pin_not_stored"), AttemptFailure.Classify(context, new ErrorOf(ForwarderError.ResponseHeaders)));
    }

    [Fact]
    public void Classify_AFailureOfTheRequestTransforms_BlamesTheGateway()
        => Assert.Equal(FailureParty.Gateway, AttemptFailure.Classify(new DefaultHttpContext(), new ErrorOf(ForwarderError.RequestCreation)).Party);

    private sealed class ErrorOf(ForwarderError error, Exception? exception = null) : IForwarderErrorFeature
    {
        public ForwarderError Error { get; } = error;

        public Exception? Exception { get; } = exception;
    }

    private sealed class StalledStream : MemoryStream
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return 0;
        }
    }

    private sealed class StartedResponse : Microsoft.AspNetCore.Http.Features.HttpResponseFeature
    {
        public override bool HasStarted => true;
    }
}
