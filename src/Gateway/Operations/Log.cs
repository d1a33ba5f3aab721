namespace Baton.Gateway.Operations;

/// <summary>Operations log events (ids 9000–9099).</summary>
internal static partial class Log
{
    [LoggerMessage(9001, LogLevel.Error, "Unhandled error in the gateway for {Method} {Path}; answered 503.", EventName = "UnhandledGatewayError")]
    public static partial void UnhandledGatewayError(ILogger logger, string method, PathString path, Exception exception);

    [LoggerMessage(9004, LogLevel.Information, "Stopping: not ready any more; serving {Delay} longer before the server drains.", EventName = "ShuttingDown")]
    public static partial void ShuttingDown(ILogger logger, TimeSpan delay);

    [LoggerMessage(9002, LogLevel.Warning, "Admin request refused ({Reason}).", EventName = "AdminRefused")]
    public static partial void AdminRefused(ILogger logger, string reason);

    [LoggerMessage(9003, LogLevel.Information, "Destination '{DestinationId}' of cluster '{ClusterId}' {Change}.", EventName = "DrainChanged")]
    public static partial void DrainChanged(ILogger logger, string clusterId, string destinationId, string change);

    [LoggerMessage(9005, LogLevel.Warning, "{Method} {Path}: the request could not be read ({StatusCode}: {Reason}).", EventName = "BadRequest")]
    public static partial void BadRequest(ILogger logger, string method, string path, int statusCode, string reason);
}
