using Baton.Gateway.Configuration;
using Baton.Gateway.Destinations;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Baton.Protocol;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Transforms;
using Yarp.ReverseProxy.Transforms.Builder;

namespace Baton.Gateway.Checkpoints;

/// <summary>
/// Adds Baton's transforms to every route: protocol headers are stripped from client requests and from
/// responses and trailers of every status, and so is a backend's <c>Server</c> header; on routes to a cluster using the <c>Baton</c> affinity policy,
/// each request carries a signed session grant and each response's checkpoint is captured and stored
/// before the response is released, its session action (login, logout) taking effect first.
/// </summary>
internal sealed class BatonTransformProvider(
    SessionStore store,
    ISessionPinTable pins,
    SessionCookie cookies,
    DestinationIncarnations incarnations,
    ProtocolKeys keys,
    IOptions<BatonOptions> options,
    TimeProvider time,
    BatonMetrics metrics,
    ILogger<BatonTransformProvider> logger) : ITransformProvider
{
    public void ValidateRoute(TransformRouteValidationContext context)
    {
    }

    public void ValidateCluster(TransformClusterValidationContext context)
    {
    }

    public void Apply(TransformBuilderContext context)
    {
        context.AddRequestTransform(StripRequestAsync);
        context.AddResponseTransform(StripResponseAsync);
        context.AddResponseTrailersTransform(trailers =>
        {
            if (trailers.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseTrailersFeature>()?.Trailers is { } sent)
            {
                ProtocolHeaders.Strip(sent);
            }

            return default;
        });

        var affinity = context.Cluster?.SessionAffinity;
        if (BatonConstants.IsBatonAffinity(affinity))
        {
            var grants = new SessionGrantTransform(keys, pins, options, time, affinity.AffinityKeyName!);
            context.RequestTransforms.Add(grants);
            var actions = new SessionActions(store, pins, cookies, keys, time, metrics, logger);
            context.ResponseTransforms.Add(new CheckpointCaptureTransform(store, pins, incarnations, actions, keys, options, time, metrics, logger));
        }
        else
        {
            // A cluster without Baton affinity never sees a Baton session cookie, whatever it is called.
            context.AddRequestTransform(transform =>
            {
                ProtocolHeaders.RemoveCookies(transform.ProxyRequest.Headers, (_, value) => cookies.IsOurs(value));
                return default;
            });
        }
    }

    private ValueTask StripRequestAsync(RequestTransformContext context)
    {
        var removed = ProtocolHeaders.Strip(context.ProxyRequest.Headers);
        if (context.ProxyRequest.Content is { } content)
        {
            removed += ProtocolHeaders.Strip(content.Headers);
        }

        if (removed > 0)
        {
            metrics.ProtocolHeadersStripped("request", removed);
            Log.ClientProtocolHeadersStripped(logger, removed);
        }

        return default;
    }

    private ValueTask StripResponseAsync(ResponseTransformContext context)
    {
        // The edge names no server software, its own or a backend's.
        context.HttpContext.Response.Headers.Remove(Microsoft.Net.Http.Headers.HeaderNames.Server);
        var removed = ProtocolHeaders.Strip(context.HttpContext.Response.Headers);
        if (removed > 0)
        {
            metrics.ProtocolHeadersStripped("response", removed);
        }

        return default;
    }
}
