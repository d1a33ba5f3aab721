namespace Baton.Gateway.Checkpoints;

/// <summary>Checkpoint log events (ids 2000–2099). Session ids appear only as hashes; state never.</summary>
internal static partial class Log
{
    [LoggerMessage(2001, LogLevel.Warning, "Checkpoint for session {SessionHash} rejected ({Problem}); answered 502, nothing stored.", EventName = "CheckpointRejected")]
    public static partial void CheckpointRejected(ILogger logger, string sessionHash, string problem);

    [LoggerMessage(2002, LogLevel.Error, "Checkpoint version {Version} of session {SessionHash} could not be stored ({Reason}); answered 503.", EventName = "CheckpointNotStored")]
    public static partial void CheckpointNotStored(ILogger logger, string sessionHash, long version, string reason);

    [LoggerMessage(2003, LogLevel.Debug, "Checkpoint version {Version} of session {SessionHash} was not newer than the stored one of its epoch (a concurrent request stored first).", EventName = "StaleCheckpoint")]
    public static partial void StaleCheckpoint(ILogger logger, string sessionHash, long version);

    // Id 1002 is kept from when the limit was checked as the session was created.
    [LoggerMessage(1002, LogLevel.Warning, "Session limit reached ({Count} sessions with state); a session's first change was refused with 503.", EventName = "SessionCapacityReached")]
    public static partial void SessionCapacityReached(ILogger logger, int count);

    [LoggerMessage(2012, LogLevel.Warning, "Session {SessionHash}: {Bytes} bytes of state refused with 503, the gateway holding {Total} bytes of state (Baton:Sessions:MaxTotalStateBytes) or its journal being full (Baton:Journal:MaxSizeBytes).", EventName = "StateBudgetReached")]
    public static partial void StateBudgetReached(ILogger logger, string sessionHash, int bytes, long total);

    [LoggerMessage(2007, LogLevel.Information, "Session {SessionHash} rotated to {NewHash}; the old id is dead.", EventName = "SessionRotated")]
    public static partial void SessionRotated(ILogger logger, string sessionHash, string newHash);

    [LoggerMessage(2008, LogLevel.Information, "Session {SessionHash} ended by the backend.", EventName = "SessionEnded")]
    public static partial void SessionEnded(ILogger logger, string sessionHash);

    [LoggerMessage(2009, LogLevel.Warning, "Session action for session {SessionHash} rejected (bad signature, malformed, or another session's id); answered 502.", EventName = "SessionActionRejected")]
    public static partial void SessionActionRejected(ILogger logger, string sessionHash);

    [LoggerMessage(2010, LogLevel.Error, "Session {SessionHash}'s new id or end could not be carried through ({Reason}); the session was ended under every id, answered {StatusCode}.", EventName = "SessionActionFailed")]
    public static partial void SessionActionFailed(ILogger logger, string sessionHash, string reason, int statusCode);

    [LoggerMessage(2011, LogLevel.Warning, "Checkpoint version {Version} of session {SessionHash} (epoch {Epoch}) is not newer than one an older epoch stored; not stored, not released, and the session starts a new epoch.", EventName = "CheckpointDiverged")]
    public static partial void CheckpointDiverged(ILogger logger, string sessionHash, long version, long epoch);

    [LoggerMessage(2005, LogLevel.Warning, "Checkpoint version {Version} of session {SessionHash} was made in epoch {Epoch}, which the session has left; not stored, not released.", EventName = "CheckpointFenced")]
    public static partial void CheckpointFenced(ILogger logger, string sessionHash, long version, long epoch);

    [LoggerMessage(2006, LogLevel.Warning, "Destination '{DestinationId}' sends version 1 checkpoints (no epoch): accepted for now, fenced by the epoch of each request's grant. Version 1 will not be accepted after the next release; upgrade its Baton backend library.", EventName = "CheckpointVersion1")]
    public static partial void CheckpointVersion1(ILogger logger, string destinationId);

    [LoggerMessage(2004, LogLevel.Information, "Stripped {Count} protocol headers sent by a client.", EventName = "ClientProtocolHeadersStripped")]
    public static partial void ClientProtocolHeadersStripped(ILogger logger, int count);
}
