using Baton.Gateway.Tls;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Configuration;

/// <summary>
/// Applies <c>Baton:Limits</c> and <c>Baton:Tls</c> to the gateway's server, and sends no <c>Server</c> header.
/// </summary>
internal sealed class KestrelSetup(IOptions<BatonOptions> options, ServerCertificate certificate) : IConfigureOptions<KestrelServerOptions>
{
    /// <summary>Kestrel's own grace period before the minimum body rate is enforced.</summary>
    private static readonly TimeSpan MinimumRateGracePeriod = TimeSpan.FromSeconds(5);

    public void Configure(KestrelServerOptions server)
    {
        var limits = options.Value.Limits;
        server.AddServerHeader = false;
        server.Limits.MaxRequestBodySize = limits.MaxRequestBodyBytes;
        server.Limits.MaxRequestHeadersTotalSize = limits.MaxRequestHeadersBytes;
        server.Limits.RequestHeadersTimeout = limits.RequestHeadersTimeout;
        server.Limits.MinRequestBodyDataRate = limits.MinRequestBodyBytesPerSecond > 0
            ? new MinDataRate(limits.MinRequestBodyBytesPerSecond, MinimumRateGracePeriod)
            : null;
        server.Limits.MaxConcurrentConnections = limits.MaxConnections;
        server.Limits.MaxConcurrentUpgradedConnections = limits.MaxConnections;

        if (certificate.IsConfigured)
        {
            certificate.EnsureLoaded();
            server.ConfigureHttpsDefaults(https =>
            {
                // Kestrel wants a certificate or a selector on every HTTPS endpoint; each handshake then
                // takes the context of the certificate in service, built once per (re)load.
                https.ServerCertificateSelector = (_, _) => certificate.Certificate;
                https.OnAuthenticate = (_, ssl) =>
                {
                    ssl.ServerCertificateSelectionCallback = null;
                    ssl.ServerCertificate = null;
                    ssl.ServerCertificateContext = certificate.Context;
                };
            });
        }
    }
}
