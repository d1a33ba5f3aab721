using Baton.Gateway.Configuration;
using Baton.Gateway.Failover;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Baton.Tests.Failover;

[Trait("Category", "Unit")]
public sealed class RequestBodyBufferTests
{
    [Fact]
    public async Task PrepareAsync_PastTheBudgetOfHeldBodies_StreamsTheNextOne_AndTakesAgainOnceOneIsReleased()
    {
        var bodies = new RequestBodyBuffer(Options.Create(new BatonOptions
        {
            Failover = new BatonFailoverOptions { MaxBufferedRequestBytes = 1024 },
            Limits = new BatonLimitsOptions { MaxBufferedBodiesBytes = 2000 },
        }), TimeProvider.System);
        var (first, firstDone) = Request(1000);
        var (second, _) = Request(900);
        var (third, _) = Request(900);

        Assert.True((await bodies.PrepareAsync(first)).Resendable);
        Assert.True((await bodies.PrepareAsync(second)).Resendable);
        Assert.False((await bodies.PrepareAsync(third)).Resendable);
        Assert.Equal(1900, bodies.HeldBytes);

        await firstDone.CompleteAsync();
        Assert.Equal(900, bodies.HeldBytes);
        var (fourth, _) = Request(900);
        Assert.True((await bodies.PrepareAsync(fourth)).Resendable);
    }

    private static (HttpContext Context, CompletingResponse Response) Request(int length)
    {
        var context = new DefaultHttpContext();
        var response = new CompletingResponse();
        context.Features.Set<IHttpResponseFeature>(response);
        context.Request.ContentLength = length;
        context.Request.Body = new MemoryStream(new byte[length]);
        return (context, response);
    }

    /// <summary>A response whose end of request can be played: it runs what was registered for it.</summary>
    private sealed class CompletingResponse : HttpResponseFeature
    {
        private readonly List<(Func<object, Task> Callback, object State)> _completed = [];

        public override void OnCompleted(Func<object, Task> callback, object state) => _completed.Add((callback, state));

        public async Task CompleteAsync()
        {
            foreach (var (callback, state) in _completed)
            {
                await callback(state);
            }
        }
    }
}
