using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Configuration.Memory;
using StackExchange.Redis;
using Microsoft.Extensions.Options;

namespace Baton.DemoBackend;

/// <summary>
/// A small app whose state lives in the ordinary ASP.NET Core session, to show what Baton protects and to
/// compare against a shared session store (<c>--Demo:SessionStore=Redis</c>).
/// </summary>
internal static class Program
{
    public static void Main(string[] args) => CreateApp(new WebApplicationOptions { Args = args }).Run();

    /// <param name="options">Host options (arguments, content root, environment).</param>
    /// <param name="configure">Runs before the app is built: a place to replace services.</param>
    public static WebApplication CreateApp(WebApplicationOptions options, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(options);

        // A default every other configuration source overrides: the framework's four lines per request
        // only from Warning up (noise in the demo, and CPU taken from everything else on a small machine).
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = [new("Logging:LogLevel:Microsoft.AspNetCore", "Warning")],
        });
        builder.Services.AddSingleton<IValidateOptions<DemoOptions>, DemoOptionsValidator>();
        builder.Services.AddOptionsWithValidateOnStart<DemoOptions>().BindConfiguration("Demo");

        var demo = builder.Configuration.GetSection("Demo").Get<DemoOptions>() ?? new DemoOptions();
        if (demo.SessionStore == SessionStoreKind.Baton)
        {
            builder.Services.AddBatonSession();
        }
        else
        {
            if (demo.SessionStore == SessionStoreKind.Redis)
            {
                builder.Services.AddStackExchangeRedisCache(redis =>
                {
                    redis.Configuration = demo.Redis;
                    redis.InstanceName = "baton-demo:";
                });

                // The session cookie is protected with Data Protection keys: every instance must share them, or a
                // cookie issued by one instance is unreadable on the next and the session looks new.
                var keys = new Lazy<IConnectionMultiplexer>(() =>
                {
                    var options = ConfigurationOptions.Parse(demo.Redis!);
                    options.AbortOnConnectFail = false;
                    return ConnectionMultiplexer.Connect(options);
                });
                builder.Services.AddDataProtection()
                    .SetApplicationName("baton-demo")
                    .PersistKeysToStackExchangeRedis(() => keys.Value.GetDatabase(), "baton-demo:data-protection-keys");
            }
            else
            {
                builder.Services.AddDistributedMemoryCache();
            }

            builder.Services.AddSession(session =>
            {
                session.IdleTimeout = demo.IdleTimeout;
                session.Cookie.Name = "demo.session";
                session.Cookie.HttpOnly = true;
                session.Cookie.IsEssential = true;
            });
        }

        builder.Services.AddGrpc();
        configure?.Invoke(builder);
        var app = builder.Build();
        app.UseDemoErrors(demo.InstanceId);
        app.UseWebSockets();
        if (demo.SessionStore == SessionStoreKind.Baton)
        {
            app.UseBatonSession();
        }
        else
        {
            app.UseSession();
        }

        app.MapDemoEndpoints();
        app.MapGrpcService<EchoService>();
        return app;
    }
}
