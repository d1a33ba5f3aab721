using Baton.Gateway;
using Baton.Gateway.Checkpoints;
using Baton.Gateway.Configuration;
using Baton.Gateway.Destinations;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Failover;
using Baton.Gateway.Operations;
using Baton.Gateway.Sessions;
using Baton.Gateway.Store;
using Baton.Gateway.Tls;
using Baton.Protocol;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Yarp.ReverseProxy.Configuration.ClusterValidators;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.SessionAffinity;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Wires Baton into an ASP.NET Core host: <c>AddBatonGateway()</c> then <c>MapBatonGateway()</c>.</summary>
internal static class BatonGatewayExtensions
{
    private const string ReadyTag = "ready";

    public static WebApplicationBuilder AddBatonGateway(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddSingleton<BatonOptionsValidator>();
        services.AddSingleton<IValidateOptions<BatonOptions>>(sp => sp.GetRequiredService<BatonOptionsValidator>());
        services.AddSingleton<IPostConfigureOptions<BatonOptions>>(sp => sp.GetRequiredService<BatonOptionsValidator>());
        services.AddOptionsWithValidateOnStart<BatonOptions>().BindConfiguration(BatonConstants.ConfigSection);
        services.AddSingleton<ServerCertificate>();
        services.AddHostedService(sp => sp.GetRequiredService<ServerCertificate>());
        services.AddSingleton<IConfigureOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>, KestrelSetup>();

        services.AddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.AddSingleton<BatonMetrics>();
        services.AddSingleton<BatonGauges>();
        services.AddSingleton<FailoverEvents>();
        services.AddSingleton<StatusReport>();
        AddTelemetry(builder);

        services.AddSingleton(sp => new ProtocolKeys(sp.GetRequiredService<IOptions<BatonOptions>>().Value.Secret!));
        AddStore(services);

        services.AddSingleton<DestinationIncarnations>();
        services.AddSingleton<DrainRegistry>();
        services.AddSingleton<RestoreClient>();
        services.AddSingleton<ISessionRestorer>(sp => sp.GetRequiredService<RestoreClient>());
        services.AddSingleton<RequestBodyBuffer>();
        services.AddSingleton<SessionMover>();
        services.AddSingleton<RestoreChecker>();
        services.AddHostedService(sp => sp.GetRequiredService<RestoreChecker>());
        services.AddSingleton<IAffinityFailurePolicy, BatonAffinityFailurePolicy>();

        services.AddSingleton(sp => new SessionCookie(sp.GetRequiredService<ProtocolKeys>(), sp.GetRequiredService<IOptions<BatonOptions>>().Value.Sessions.HostPrefix));
        services.AddSingleton<ISessionPinTable, SessionPinTable>();
        services.AddHostedService<SessionPinPurger>();

        services.AddReverseProxy()
            .LoadFromConfig(builder.Configuration.GetSection(BatonConstants.ProxyConfigSection))
            .AddTransforms<BatonTransformProvider>();
        services.AddSingleton<ISessionAffinityPolicy, BatonSessionAffinityPolicy>();
        services.AddSingleton<IPassiveHealthCheckPolicy, BatonPassiveHealthPolicy>();
        services.AddSingleton<IAvailableDestinationsPolicy, BatonAvailableDestinationsPolicy>();
        services.AddSingleton<IClusterValidator, BatonClusterValidator>();

        services.AddHealthChecks().AddCheck<GatewayReadinessCheck>("gateway", tags: [ReadyTag]);
        services.AddHostedService<ShutdownDelay>();
        services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(30));
        return builder;
    }

    // The tiers start (open, connect) as hosted services before anything that reads them, and stop after.
    private static void AddStore(IServiceCollection services)
    {
        services.AddSingleton<IJournalEngine>(sp => sp.GetRequiredService<IOptions<BatonOptions>>().Value.Journal.Provider switch
        {
            JournalProvider.PostgreSql => ActivatorUtilities.CreateInstance<PostgreSqlJournal>(sp),
            JournalProvider.MySql => ActivatorUtilities.CreateInstance<MySqlJournal>(sp),
            _ => ActivatorUtilities.CreateInstance<SqliteJournal>(sp),
        });
        services.AddSingleton<JournalTier>();
        services.AddHostedService(sp => sp.GetRequiredService<JournalTier>());
        services.AddSingleton<RedisTier>();
        services.AddHostedService(sp => sp.GetRequiredService<RedisTier>());
        services.AddSingleton(sp => new SessionStore(
            sp.GetRequiredService<RedisTier>(),
            sp.GetRequiredService<JournalTier>(),
            sp.GetRequiredService<IOptions<BatonOptions>>(),
            sp.GetRequiredService<BatonMetrics>(),
            sp.GetRequiredService<ILogger<SessionStore>>(),
            sp.GetRequiredService<RedisTier>()));
        services.AddSingleton<IPinPersistence>(sp => sp.GetRequiredService<SessionStore>());
        services.AddHostedService<JournalMaintenance>();
        services.AddHostedService<RedisRefill>();
        services.AddHostedService<StoreCatchUp>();
    }

    public static WebApplication MapBatonGateway(this WebApplication app)
    {
        UseTrustedForwardedHeaders(app);
        app.UseMiddleware<GatewayErrorMiddleware>();
        app.MapHealthChecks(BatonConstants.Paths.Live, new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks(BatonConstants.Paths.Ready, new HealthCheckOptions { Predicate = check => check.Tags.Contains(ReadyTag) });
        app.MapBatonAdmin();
        app.MapBatonStatus();
        app.Services.GetRequiredService<BatonGauges>();

        try
        {
            app.MapReverseProxy(proxy =>
            {
                proxy.UseMiddleware<SessionIdentityMiddleware>();
                proxy.UseMiddleware<FailoverMiddleware>();
                proxy.UseSessionAffinity();
                proxy.UseLoadBalancing();
                proxy.UsePassiveHealthChecks();
            });
        }
        catch (InvalidOperationException ex)
        {
            throw new InvalidOperationException(DescribeProxyConfigError(ex), ex);
        }

        return app;
    }

    // X-Forwarded-* are believed only from the proxies named in Baton:ForwardedHeaders, never from clients.
    private static void UseTrustedForwardedHeaders(WebApplication app)
    {
        var trusted = app.Services.GetRequiredService<IOptions<BatonOptions>>().Value.ForwardedHeaders;
        if (trusted.KnownProxies.Length == 0 && trusted.KnownNetworks.Length == 0)
        {
            return;
        }

        var options = new ForwardedHeadersOptions
        {
            ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost,
        };
        options.KnownProxies.Clear();
        options.KnownIPNetworks.Clear();
        foreach (var proxy in trusted.KnownProxies)
        {
            options.KnownProxies.Add(System.Net.IPAddress.Parse(proxy));
        }

        foreach (var network in trusted.KnownNetworks)
        {
            options.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(network));
        }

        app.UseForwardedHeaders(options);
    }

    // Metrics always (Prometheus scraping at /_baton/metrics; OTLP too when OTEL_EXPORTER_OTLP_ENDPOINT is
    // set); traces are collected only when they are exported, so that spans cost nothing otherwise.
    private static void AddTelemetry(WebApplicationBuilder builder)
    {
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService("baton-gateway"))
            .WithMetrics(metrics => metrics
                .AddMeter(BatonMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddPrometheusExporter());
        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            telemetry
                .WithTracing(tracing => tracing
                    .AddSource(BatonTelemetry.SourceName, "Yarp.ReverseProxy")
                    .AddAspNetCoreInstrumentation(aspnet => aspnet.Filter = context => !context.Request.Path.StartsWithSegments(BatonConstants.Paths.Prefix))
                    .AddHttpClientInstrumentation())
                .UseOtlpExporter();
        }
    }

    // YARP nests its findings two or three levels deep; put every one on its own line.
    private static string DescribeProxyConfigError(Exception ex)
    {
        var lines = new List<string>();
        Collect(ex, lines);
        return $"The {BatonConstants.ProxyConfigSection} configuration is invalid:{Environment.NewLine} - " + string.Join(Environment.NewLine + " - ", lines);

        static void Collect(Exception e, List<string> lines)
        {
            switch (e)
            {
                case AggregateException aggregate:
                    foreach (var inner in aggregate.InnerExceptions)
                    {
                        Collect(inner, lines);
                    }

                    break;
                case { InnerException: { } inner }:
                    Collect(inner, lines);
                    break;
                default:
                    lines.Add(e.Message);
                    break;
            }
        }
    }
}
