namespace Baton.Gateway;

/// <summary>
/// The Baton gateway: YARP routes from configuration (<c>ReverseProxy</c>), Baton's settings from <c>Baton</c>.
/// </summary>
internal static class Program
{
    public static void Main(string[] args) => CreateApp(new WebApplicationOptions { Args = args }).Run();

    /// <param name="options">Host options (arguments, content root, environment).</param>
    /// <param name="configure">Runs after Baton's services are added, before the app is built: a place to replace them.</param>
    public static WebApplication CreateApp(WebApplicationOptions options, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(options);
        builder.AddBatonGateway();
        configure?.Invoke(builder);
        var app = builder.Build();
        app.MapBatonGateway();
        return app;
    }
}
