namespace Baton.Gateway.Sessions;

/// <summary>Session log events (ids 1000–1099). Session ids appear only as hashes.</summary>
internal static partial class Log
{
    [LoggerMessage(1001, LogLevel.Information, "Session cookie rejected ({Reason}); a new session is issued.", EventName = "SessionCookieRejected")]
    public static partial void SessionCookieRejected(ILogger logger, string reason);

    [LoggerMessage(1003, LogLevel.Debug, "Session {SessionHash} pinned to destination '{DestinationId}'.", EventName = "SessionPinned")]
    public static partial void SessionPinned(ILogger logger, string sessionHash, string destinationId);

    [LoggerMessage(1004, LogLevel.Information, "Session {SessionHash} moved from destination '{From}' to '{To}'.", EventName = "SessionRepinned")]
    public static partial void SessionRepinned(ILogger logger, string sessionHash, string from, string to);

    [LoggerMessage(1005, LogLevel.Information, "Session {SessionHash} is pinned to destination '{DestinationId}', which is not available in cluster '{ClusterId}'.", EventName = "PinnedDestinationUnavailable")]
    public static partial void PinnedDestinationUnavailable(ILogger logger, string sessionHash, string destinationId, string clusterId);

    [LoggerMessage(1008, LogLevel.Warning, "A session cookie could not be looked up in the store ({Reason}); answered 503.", EventName = "SessionLookupUnavailable")]
    public static partial void SessionLookupUnavailable(ILogger logger, string reason);

    [LoggerMessage(1007, LogLevel.Information, "Loaded {Count} live sessions.", EventName = "SessionsLoaded")]
    public static partial void SessionsLoaded(ILogger logger, int count);

    [LoggerMessage(1006, LogLevel.Debug, "Purged {Purged} expired sessions; {Remaining} remain.", EventName = "ExpiredSessionsPurged")]
    public static partial void ExpiredSessionsPurged(ILogger logger, int purged, int remaining);
}
