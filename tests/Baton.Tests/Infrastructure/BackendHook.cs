using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A step put in front of a real backend's whole pipeline (its Baton library included), for a backend that
/// misbehaves on cue: one that fails a request halfway through its body, holds a restore, or holds a request
/// to look busy. Everything the hook passes on is served by the backend as usual.
/// </summary>
internal static class BackendHook
{
    /// <summary>For <see cref="TestBackend.StartAsync(string, string[], Action{WebApplicationBuilder}?)"/>: runs <paramref name="hook"/> first on every request.</summary>
    public static Action<WebApplicationBuilder> Before(Func<HttpContext, RequestDelegate, Task> hook)
        => builder => builder.Services.AddSingleton<IStartupFilter>(new Filter(hook));

    private sealed class Filter(Func<HttpContext, RequestDelegate, Task> hook) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next)
            => app =>
            {
                app.Use(hook);
                next(app);
            };
    }
}
