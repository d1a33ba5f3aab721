using Microsoft.Extensions.Logging;

namespace Baton.Backend;

/// <summary>Backend library log events (ids 5000–5099). Session ids appear only as hashes; state never.</summary>
internal static partial class Log
{
    [LoggerMessage(5001, LogLevel.Warning, "Request refused ({Reason}): {Detail}", EventName = "RequestRefused")]
    public static partial void RequestRefused(ILogger logger, string reason, string detail);

    [LoggerMessage(5002, LogLevel.Information, "Session {SessionHash} is at version {Have} here but the gateway holds {Want}: refused as stale so the gateway restores it.", EventName = "StaleSessionRefused")]
    public static partial void StaleSessionRefused(ILogger logger, string sessionHash, long have, long want);

    [LoggerMessage(5003, LogLevel.Warning, "Session {SessionHash} change rolled back: the state would be {Bytes} bytes, over the limit of {Limit}.", EventName = "OversizedChangeRolledBack")]
    public static partial void OversizedChangeRolledBack(ILogger logger, string sessionHash, int bytes, long limit);

    [LoggerMessage(5004, LogLevel.Warning, "Session {SessionHash} changed after its response started ({Why}); the change (version {Version}) rides with the session's next response.", EventName = "ChangeDeferred")]
    public static partial void ChangeDeferred(ILogger logger, string sessionHash, long version, string why);

    [LoggerMessage(5005, LogLevel.Error, "Session {SessionHash} change made after the response started was lost: {Why}.", EventName = "LateChangeLost")]
    public static partial void LateChangeLost(ILogger logger, string sessionHash, string why);

    [LoggerMessage(5006, LogLevel.Information, "Session {SessionHash} restored at version {Version} ({Bytes} bytes).", EventName = "SessionRestored")]
    public static partial void SessionRestored(ILogger logger, string sessionHash, long version, int bytes);

    [LoggerMessage(5007, LogLevel.Warning, "Restore refused ({Reason}): {Detail}", EventName = "RestoreRefused")]
    public static partial void RestoreRefused(ILogger logger, string reason, string detail);
}
