using Baton.Backend;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Two lines make an app's <c>HttpContext.Session</c> checkpointed by a Baton gateway:
/// <c>builder.Services.AddBatonSession()</c> and <c>app.UseBatonSession()</c> (in place of
/// <c>AddSession</c>/<c>UseSession</c>). Settings come from the <c>Baton</c> section.
/// </summary>
public static class BatonBackendExtensions
{
    /// <summary>
    /// Registers Baton's in-memory session store, its restore endpoint and its settings (<c>Baton:Secret</c>,
    /// <c>Baton:Backend:*</c>, validated at startup), in place of <c>AddDistributedMemoryCache()</c> + <c>AddSession()</c>.
    /// </summary>
    public static IServiceCollection AddBatonSession(this IServiceCollection services)
    {
        services.AddSingleton<BatonBackendOptionsValidator>();
        services.AddSingleton<IValidateOptions<BatonBackendOptions>>(sp => sp.GetRequiredService<BatonBackendOptionsValidator>());
        services.AddSingleton<IPostConfigureOptions<BatonBackendOptions>>(sp => sp.GetRequiredService<BatonBackendOptionsValidator>());
        services.AddOptionsWithValidateOnStart<BatonBackendOptions>().BindConfiguration("Baton");
        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.TryAddSingleton<BackendMetrics>();
        services.TryAddSingleton<BackendIdentity>();
        services.TryAddSingleton<BackendSessionStore>();
        services.TryAddSingleton<ReplayGuard>();
        services.TryAddSingleton<RetiredSessions>();
        services.TryAddSingleton<RestoreEndpoint>();
        services.AddHostedService<SessionPurger>();
        return services;
    }

    /// <summary>Place it where <c>UseSession</c> would go: before anything that reads the session.</summary>
    public static IApplicationBuilder UseBatonSession(this IApplicationBuilder app) => app.UseMiddleware<BatonSessionMiddleware>();
}
