namespace Baton.DemoBackend;

/// <summary>
/// A failure inside the demo (a session store that is down, say) answers 500 with a JSON reason and the
/// instance's name, like every other answer, so a client can tell a backend's error from a gateway's.
/// </summary>
internal static partial class DemoErrors
{
    public static void UseDemoErrors(this WebApplication app, string instance)
    {
        var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Baton.DemoBackend");
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (Exception ex) when (!context.Response.HasStarted && !context.RequestAborted.IsCancellationRequested)
            {
                LogFailure(logger, context.Request.Method, context.Request.Path, ex);
                context.Response.Clear();
                context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                await context.Response.WriteAsJsonAsync(new ErrorAnswer($"The request failed inside the backend ({ex.GetType().Name}).", instance));
            }
        });
    }

    [LoggerMessage(EventId = 6001, Level = LogLevel.Error, Message = "{Method} {Path} failed")]
    private static partial void LogFailure(ILogger logger, string method, string path, Exception exception);
}
