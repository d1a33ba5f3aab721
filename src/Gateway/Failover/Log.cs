namespace Baton.Gateway.Failover;

/// <summary>Failover log events (ids 4000–4099). Session ids appear only as hashes.</summary>
internal static partial class Log
{
    [LoggerMessage(4001, LogLevel.Warning, "Request to destination '{DestinationId}' failed ({Error}: {Detail}); the session moves and the request is resent.", EventName = "FailingOver")]
    public static partial void FailingOver(ILogger logger, string destinationId, string error, string detail);

    [LoggerMessage(4002, LogLevel.Information, "Session {SessionHash} moved from '{From}' to '{To}'.", EventName = "SessionMoved")]
    public static partial void SessionMoved(ILogger logger, string sessionHash, string from, string to);

    [LoggerMessage(4003, LogLevel.Information, "Session {SessionHash} restored on '{DestinationId}' at version {Version}, epoch {Epoch}.", EventName = "SessionRestored")]
    public static partial void SessionRestored(ILogger logger, string sessionHash, string destinationId, long version, long epoch);

    [LoggerMessage(4004, LogLevel.Warning, "Restore of session {SessionHash} on '{DestinationId}' failed; trying another destination.", EventName = "RestoreFailed")]
    public static partial void RestoreFailed(ILogger logger, string sessionHash, string destinationId);

    [LoggerMessage(4005, LogLevel.Warning, "Request for session {SessionHash} not resent after '{Error}': it may have been processed ({Method} without Idempotency-Key).", EventName = "ResendRefused")]
    public static partial void ResendRefused(ILogger logger, string sessionHash, string error, string method);

    [LoggerMessage(4006, LogLevel.Warning, "No healthy destination in cluster '{ClusterId}' within the wait; answered 503.", EventName = "NoDestination")]
    public static partial void NoDestination(ILogger logger, string clusterId);

    [LoggerMessage(4007, LogLevel.Information, "Destination '{DestinationId}' has a stale copy of session {SessionHash}; restoring it there.", EventName = "StaleCopyRefreshed")]
    public static partial void StaleCopyRefreshed(ILogger logger, string destinationId, string sessionHash);

    [LoggerMessage(4008, LogLevel.Warning, "Request for session {SessionHash} not resent after '{Error}': {Reason}; answered 503.", EventName = "ResendImpossible")]
    public static partial void ResendImpossible(ILogger logger, string sessionHash, string error, string reason);

    [LoggerMessage(4009, LogLevel.Information, "Destination '{DestinationId}' takes restores (backend process {Incarnation}).", EventName = "RestoreCheckAccepted")]
    public static partial void RestoreCheckAccepted(ILogger logger, string destinationId, string incarnation);

    [LoggerMessage(4010, LogLevel.Error, "Destination '{DestinationId}' refuses restores ({StatusCode}): sessions could not fail over to it. Check that Baton:Secret is the same on the gateway and the backend, and that their clocks agree.", EventName = "RestoreCheckRefused")]
    public static partial void RestoreCheckRefused(ILogger logger, string destinationId, int statusCode);

    [LoggerMessage(4011, LogLevel.Warning, "Destination '{DestinationId}' answers without a Baton-Incarnation header: it does not run the Baton backend library, so sessions cannot be restored there.", EventName = "RestoreCheckNotBaton")]
    public static partial void RestoreCheckNotBaton(ILogger logger, string destinationId);

    [LoggerMessage(4012, LogLevel.Warning, "Request to destination '{DestinationId}' failed after its response had started ({Error}: {Detail}); the response to the client is cut short.", EventName = "FailedAfterResponseStarted")]
    public static partial void FailedAfterResponseStarted(ILogger logger, string destinationId, string error, string detail);

    [LoggerMessage(4014, LogLevel.Information, "{Method} request (destination '{DestinationId}') failed on the client's side ({Reason}); answered {StatusCode}, no destination blamed.", EventName = "ClientFailedRequest")]
    public static partial void ClientFailedRequest(ILogger logger, string method, string destinationId, string reason, int statusCode);

    [LoggerMessage(4015, LogLevel.Warning, "Request for session {SessionHash} failed in the gateway itself ({Reason}: {Detail}); answered 503, no destination blamed.", EventName = "GatewayFailedAttempt")]
    public static partial void GatewayFailedAttempt(ILogger logger, string sessionHash, string reason, string detail);

    [LoggerMessage(4016, LogLevel.Warning, "Request for session {SessionHash} not resent after '{Error}': its change was already stored; answered 502.", EventName = "ResendRefusedStored")]
    public static partial void ResendRefusedStored(ILogger logger, string sessionHash, string error);

    [LoggerMessage(4013, LogLevel.Warning, "Checking the restore channel of destination '{DestinationId}' failed; it is checked again at the next round.", EventName = "RestoreCheckFailed")]
    public static partial void RestoreCheckFailed(ILogger logger, string destinationId, Exception exception);

    [LoggerMessage(4017, LogLevel.Information, "Session {SessionHash} was moved by another gateway; following it to '{DestinationId}' in epoch {Epoch}.", EventName = "SessionFollowed")]
    public static partial void SessionFollowed(ILogger logger, string sessionHash, string destinationId, long epoch);

    [LoggerMessage(4019, LogLevel.Information, "Request for session {SessionHash} refused: the session was renewed or ended ({How}) while the request was on its way; nothing of it restored; answered 503.", EventName = "SessionGone")]
    public static partial void SessionGone(ILogger logger, string sessionHash, string how);

    [LoggerMessage(4018, LogLevel.Warning, "The move of session {SessionHash} to '{DestinationId}' could not be claimed: the journal did not answer.", EventName = "MoveNotClaimed")]
    public static partial void MoveNotClaimed(ILogger logger, string sessionHash, string destinationId);
}
