using System.Collections.Concurrent;
using System.Net;
using Baton.Gateway.Configuration;
using Baton.Gateway.Destinations;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Baton.Protocol;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Model;

namespace Baton.Gateway.Failover;

/// <summary>
/// Sends a session's last checkpoint to a backend over the authenticated restore channel, bound to the
/// backend process's incarnation. At most <c>MaxConcurrentRestoresPerDestination</c> run at once per
/// destination; each has <c>RestoreTimeout</c> in all. Restores travel like the cluster's own requests —
/// an HTTP client made from the cluster's <c>HttpClient</c> settings (its TLS settings included) and its HTTP
/// version — so a destination reached over HTTPS with a private CA or over cleartext HTTP/2 (a gRPC service)
/// is restored the same way; the client is the restores' own, so they never queue behind the cluster's
/// long-lived streams for a connection.
/// </summary>
internal sealed class RestoreClient : ISessionRestorer
{
    private readonly IForwarderHttpClientFactory _factory;
    private readonly ConcurrentDictionary<string, (HttpClientConfig? Config, HttpMessageInvoker Client)> _clients = new(StringComparer.OrdinalIgnoreCase);
    private readonly ProtocolKeys _keys;
    private readonly ISessionPinTable _pins;
    private readonly DestinationIncarnations _incarnations;
    private readonly BatonFailoverOptions _options;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, SemaphoreSlim> _slots = new(StringComparer.OrdinalIgnoreCase);

    public RestoreClient(ProtocolKeys keys, DestinationIncarnations incarnations, ISessionPinTable pins, IOptions<BatonOptions> options, TimeProvider time, IForwarderHttpClientFactory factory)
    {
        _factory = factory;
        _pins = pins;
        _keys = keys;
        _incarnations = incarnations;
        _options = options.Value.Failover;
        _time = time;
    }

    public Task<RestoreResult> RestoreAsync(ClusterState cluster, DestinationState destination, SessionId session, SessionRecord? record, long epoch, CancellationToken cancellationToken)
        => TryRestoreAsync(cluster, destination, session, record, epoch, cancellationToken);

    /// <summary>
    /// Asks the destination which backend process answers there now (and remembers it). Answered is false
    /// when nothing answered; Incarnation is null when the answer named no process.
    /// </summary>
    public async Task<(bool Answered, string? Incarnation)> IdentifyAsync(ClusterState cluster, DestinationState destination, CancellationToken cancellationToken)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.RestoreTimeout);
            return (true, await ProbeAsync(cluster, destination, timeout.Token));
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return (false, null);
        }
    }

    /// <summary>
    /// Restores the state and says how the backend answered. A session the pin table knows was renewed or ended is never
    /// sent: refused here as the backend would (410).
    /// </summary>
    public async Task<RestoreResult> TryRestoreAsync(ClusterState cluster, DestinationState destination, SessionId session, SessionRecord? record, long epoch, CancellationToken cancellationToken)
    {
        if (_pins.IsRetired(session))
        {
            return new RestoreResult(false, HttpStatusCode.Gone, null);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.RestoreTimeout);
        var slot = _slots.GetOrAdd(destination.DestinationId, _ => new SemaphoreSlim(_options.MaxConcurrentRestoresPerDestination));
        try
        {
            await slot.WaitAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return default;
        }

        string? incarnation = null;
        try
        {
            HttpStatusCode? status = null;
            for (var attempt = 0; attempt < 2; attempt++)
            {
                incarnation = _incarnations.Get(cluster.ClusterId, destination.DestinationId) ?? await ProbeAsync(cluster, destination, timeout.Token);
                if (incarnation is null)
                {
                    return default;
                }

                status = await SendAsync(cluster, destination, session, record, epoch, incarnation, timeout.Token);
                if (status == HttpStatusCode.NoContent)
                {
                    return new RestoreResult(true, status, incarnation);
                }

                // Another process answers at that address now: learn its incarnation and try once more.
                if (status != HttpStatusCode.Forbidden)
                {
                    break;
                }

                _incarnations.Forget(cluster.ClusterId, destination.DestinationId);
            }

            return new RestoreResult(false, status, incarnation);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return new RestoreResult(false, null, incarnation);
        }
        finally
        {
            slot.Release();
        }
    }

    private async Task<HttpStatusCode> SendAsync(ClusterState cluster, DestinationState destination, SessionId session, SessionRecord? record, long epoch, string incarnation, CancellationToken cancellationToken)
    {
        // The digest stored with the checkpoint (the backend's own), not one of the bytes read back: a copy a tier
        // damaged is refused by the backend rather than restored.
        var state = record?.State ?? [];
        var descriptor = new RestoreDescriptor(session.Value, record?.Version ?? 0, epoch, state.Length, record?.Digest ?? SessionRecord.EmptyDigest, incarnation, ProtocolTime.Now(_time), Ids.New());
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(BaseAddress(destination), ProtocolConstants.RestorePath))
        {
            Content = new ByteArrayContent(state),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
        request.Headers.TryAddWithoutValidation(ProtocolConstants.RestoreHeader, descriptor.Format(_keys));
        using var response = await SendOnClusterAsync(cluster, request, cancellationToken);
        return response.StatusCode;
    }

    /// <summary>Asks the backend which process it is: every answer of the library names its incarnation.</summary>
    private async Task<string?> ProbeAsync(ClusterState cluster, DestinationState destination, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(BaseAddress(destination), ProtocolConstants.RestorePath));
        using var response = await SendOnClusterAsync(cluster, request, cancellationToken);
        if (!response.Headers.TryGetValues(ProtocolConstants.IncarnationHeader, out var values))
        {
            return null;
        }

        var incarnation = values.First();
        _incarnations.Report(cluster.ClusterId, destination.DestinationId, incarnation);
        return incarnation;
    }

    private static Uri BaseAddress(DestinationState destination) => new(destination.Model.Config.Address, UriKind.Absolute);

    // The cluster's settings and version, with YARP's defaults (HTTP/2, or lower where the connection offers no more).
    private Task<HttpResponseMessage> SendOnClusterAsync(ClusterState cluster, HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var config = cluster.Model.Config;
        request.Version = config.HttpRequest?.Version ?? HttpVersion.Version20;
        request.VersionPolicy = config.HttpRequest?.VersionPolicy ?? HttpVersionPolicy.RequestVersionOrLower;
        return ClientFor(cluster.ClusterId, config).SendAsync(request, cancellationToken);
    }

    // One client per cluster, made again only when its HttpClient settings change (a reload that changes them).
    private HttpMessageInvoker ClientFor(string clusterId, ClusterConfig config)
    {
        if (_clients.TryGetValue(clusterId, out var known) && Equals(known.Config, config.HttpClient))
        {
            return known.Client;
        }

        lock (_clients)
        {
            if (_clients.TryGetValue(clusterId, out known) && Equals(known.Config, config.HttpClient))
            {
                return known.Client;
            }

            var client = _factory.CreateClient(new ForwarderHttpClientContext
            {
                ClusterId = clusterId,
                OldConfig = HttpClientConfig.Empty,
                OldMetadata = null,
                OldClient = null,
                NewConfig = config.HttpClient ?? HttpClientConfig.Empty,
                NewMetadata = config.Metadata,
            });
            _clients[clusterId] = (config.HttpClient, client);
            return client;
        }
    }
}

/// <param name="Accepted">True when the backend installed the state.</param>
/// <param name="Status">The backend's answer; null when there was none.</param>
/// <param name="Incarnation">The backend process the restore was bound to.</param>
internal readonly record struct RestoreResult(bool Accepted, HttpStatusCode? Status, string? Incarnation);

/// <summary>Puts a session's last checkpoint onto a backend: the seam between moving a session and the wire.</summary>
internal interface ISessionRestorer
{
    /// <summary>
    /// How the backend answered: accepted when it installed the state (<paramref name="record"/> null: an empty session) in
    /// <paramref name="epoch"/>; 410 when the session was renewed or ended (there, or as the gateway knows).
    /// </summary>
    Task<RestoreResult> RestoreAsync(ClusterState cluster, DestinationState destination, SessionId session, SessionRecord? record, long epoch, CancellationToken cancellationToken);
}
