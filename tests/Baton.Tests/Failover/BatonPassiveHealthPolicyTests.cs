using Baton.Gateway.Failover;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Baton.Tests.Failover;

[Trait("Category", "Unit")]
public sealed class BatonPassiveHealthPolicyTests
{
    [Fact]
    public void RequestProxied_ADestinationsFailure_MarksItDown_ButNeverTheLastOneAvailable()
    {
        var updater = new RecordingUpdater();
        var policy = new BatonPassiveHealthPolicy(updater);
        var (b1, b2) = (new DestinationState("b1"), new DestinationState("b2"));
        var cluster = Cluster(b1, b2);

        policy.RequestProxied(Failed(), cluster, b1);
        Assert.Equal(["b1"], updater.MarkedDown);

        cluster.DestinationsState = new ClusterDestinationsState([b1, b2], [b2]);
        policy.RequestProxied(Failed(), cluster, b2);
        Assert.Equal(["b1"], updater.MarkedDown);
    }

    [Fact]
    public void RequestProxied_AClientsFailure_MarksNothing()
    {
        var updater = new RecordingUpdater();
        var (b1, b2) = (new DestinationState("b1"), new DestinationState("b2"));
        var cluster = Cluster(b1, b2);

        new BatonPassiveHealthPolicy(updater).RequestProxied(Failed(ForwarderError.RequestBodyClient), cluster, b1);

        Assert.Empty(updater.MarkedDown);
    }

    private static ClusterState Cluster(params DestinationState[] destinations)
        => new("demo", new ClusterModel(new Yarp.ReverseProxy.Configuration.ClusterConfig { ClusterId = "demo" }, new HttpMessageInvoker(new HttpClientHandler())))
        {
            DestinationsState = new ClusterDestinationsState(destinations, destinations),
        };

    private static DefaultHttpContext Failed(ForwarderError error = ForwarderError.Request)
    {
        var context = new DefaultHttpContext();
        context.Features.Set<IForwarderErrorFeature>(new ErrorOf(error));
        return context;
    }

    private sealed class ErrorOf(ForwarderError error) : IForwarderErrorFeature
    {
        public ForwarderError Error { get; } = error;

        public Exception? Exception => null;
    }

    private sealed class RecordingUpdater : IDestinationHealthUpdater
    {
        public List<string> MarkedDown { get; } = [];

        public void SetActive(ClusterState cluster, IEnumerable<NewActiveDestinationHealth> newHealthPairs)
        {
        }

        public void SetPassive(ClusterState cluster, DestinationState destination, DestinationHealth newHealth, TimeSpan reactivationPeriod)
        {
            if (newHealth == DestinationHealth.Unhealthy)
            {
                MarkedDown.Add(destination.DestinationId);
            }
        }
    }
}
