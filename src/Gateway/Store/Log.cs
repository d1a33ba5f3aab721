namespace Baton.Gateway.Store;

/// <summary>Store log events (ids 3000–3099).</summary>
internal static partial class Log
{
    [LoggerMessage(3015, LogLevel.Warning, "The journal holds {Size} bytes, past Baton:Journal:MaxSizeBytes ({Limit}): changes that grow a session's state are refused until it shrinks.", EventName = "JournalFull")]
    public static partial void JournalFull(ILogger logger, long size, long limit);

    [LoggerMessage(3001, LogLevel.Information, "Journal ({Provider}) open at {Location} ({Settings}).", EventName = "JournalOpened")]
    public static partial void JournalOpened(ILogger logger, string provider, string location, string settings);

    [LoggerMessage(3019, LogLevel.Warning, "Journal {Location} migrated from schema version {From} to {To}.", EventName = "JournalMigrated")]
    public static partial void JournalMigrated(ILogger logger, string location, long from, int to);

    [LoggerMessage(3020, LogLevel.Warning, "A journal read failed ({Reason}); the read is answered from Redis where Redis holds the session at its known version.", EventName = "JournalReadFailed")]
    public static partial void JournalReadFailed(ILogger logger, string reason);

    [LoggerMessage(3021, LogLevel.Error, "The shared journal could not be read at startup ({Reason}); the gateway starts without its sessions.", EventName = "SharedJournalUnreadable")]
    public static partial void SharedJournalUnreadable(ILogger logger, string reason);

    [LoggerMessage(3022, LogLevel.Information, "Wrote {Written} missed writes into the tiers that missed them; {Behind} sessions still held by Redis alone.", EventName = "TiersCaughtUp")]
    public static partial void TiersCaughtUp(ILogger logger, int written, int behind);

    [LoggerMessage(3023, LogLevel.Debug, "Session {Session} written into the journal from Redis (version {Version}, epoch {Epoch}).", EventName = "JournalCaughtUpSession")]
    public static partial void JournalCaughtUpSession(ILogger logger, string session, long version, long epoch);

    [LoggerMessage(3024, LogLevel.Warning, "Journal maintenance failed ({Reason}); the next interval tries again.", EventName = "JournalMaintenanceFailed")]
    public static partial void JournalMaintenanceFailed(ILogger logger, string reason);

    [LoggerMessage(3025, LogLevel.Error, "The {Provider} journal at {Location} cannot be reached ({Reason}); the gateway starts without it: writes are held by Redis alone and written into the journal when it answers.", EventName = "JournalServerUnreachable")]
    public static partial void JournalServerUnreachable(ILogger logger, string provider, string location, string reason);

    [LoggerMessage(3002, LogLevel.Error, "Journal commit of {Count} writes failed; none of them is acknowledged.", EventName = "JournalCommitFailed")]
    public static partial void JournalCommitFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(3003, LogLevel.Warning, "Redis connection to {EndPoint} failed ({FailureType}); the journal carries on alone.", EventName = "RedisConnectionFailed")]
    public static partial void RedisConnectionFailed(ILogger logger, string endPoint, string failureType);

    [LoggerMessage(3004, LogLevel.Information, "Redis connection to {EndPoint} restored.", EventName = "RedisConnectionRestored")]
    public static partial void RedisConnectionRestored(ILogger logger, string endPoint);

    [LoggerMessage(3005, LogLevel.Debug, "Redis {Operation} took longer than its budget of {Budget}; going on without it.", EventName = "RedisOverBudget")]
    public static partial void RedisOverBudget(ILogger logger, string operation, TimeSpan budget);

    [LoggerMessage(3006, LogLevel.Warning, "Redis {Operation} failed; going on without it.", EventName = "RedisCallFailed")]
    public static partial void RedisCallFailed(ILogger logger, string operation, Exception exception);

    [LoggerMessage(3007, LogLevel.Warning, "A background {Operation} write failed.", EventName = "BackgroundWriteFailed")]
    public static partial void BackgroundWriteFailed(ILogger logger, string operation, Exception exception);

    [LoggerMessage(3016, LogLevel.Warning, "Redis could not be refilled ({Reason}): the journal could not be read ({Error}). The next check tries again.", EventName = "RedisRefillFailed")]
    public static partial void RedisRefillFailed(ILogger logger, string reason, string error);

    [LoggerMessage(3026, LogLevel.Warning, "Redis was refilled only in part ({Reason}): {Sessions} sessions written, {Unanswered} writes refused or unanswered. The next check tries again.", EventName = "RedisRefillIncomplete")]
    public static partial void RedisRefillIncomplete(ILogger logger, string reason, int sessions, int unanswered);

    [LoggerMessage(3010, LogLevel.Information, "Redis refilled from the journal ({Reason}): {Sessions} sessions in {Elapsed}.", EventName = "RedisRefilled")]
    public static partial void RedisRefilled(ILogger logger, string reason, int sessions, TimeSpan elapsed);

    [LoggerMessage(3011, LogLevel.Error, "The journal {Path} was damaged ({Reason}); it was moved to {QuarantinedTo} and a new journal started.", EventName = "JournalQuarantined")]
    public static partial void JournalQuarantined(ILogger logger, string path, string quarantinedTo, string reason);

    [LoggerMessage(3012, LogLevel.Warning, "The new journal was rebuilt from Redis: {Sessions} sessions ({Skipped} Redis reads not answered).", EventName = "JournalRebuilt")]
    public static partial void JournalRebuilt(ILogger logger, int sessions, int skipped);

    [LoggerMessage(3017, LogLevel.Warning, "The journal was behind Redis at startup: {Sessions} sessions written back from Redis ({Skipped} Redis reads not answered).", EventName = "JournalCaughtUp")]
    public static partial void JournalCaughtUp(ILogger logger, int sessions, int skipped);

    [LoggerMessage(3018, LogLevel.Error, "Taking back what Redis holds newer than the journal failed at startup ({Reason}); the gateway starts from the journal, and reads still prefer the newer tier.", EventName = "JournalCatchUpFailed")]
    public static partial void JournalCatchUpFailed(ILogger logger, string reason);

    [LoggerMessage(3027, LogLevel.Warning, "Session {Session}: the {Tier} tier could not apply a delta onto the state it holds (an older line, or none); the other tier holds the change and the {Tier} tier takes the whole state from it.", EventName = "DeltaUnapplicable")]
    public static partial void DeltaUnapplicable(ILogger logger, string session, string tier);

    [LoggerMessage(3013, LogLevel.Error, "The journal could not take a {Operation} ({Reason}); it is held by Redis alone until the journal recovers.", EventName = "JournalDegraded")]
    public static partial void JournalDegraded(ILogger logger, string operation, string reason);

    [LoggerMessage(3014, LogLevel.Warning, "Redis missed its budget or failed too often in a row; it is skipped for {Break}.", EventName = "RedisCircuitOpened")]
    public static partial void RedisCircuitOpened(ILogger logger, TimeSpan @break);

    [LoggerMessage(3009, LogLevel.Debug, "Journal compacted: {Deleted} long-idle sessions removed.", EventName = "JournalCompacted")]
    public static partial void JournalCompacted(ILogger logger, int deleted);
}
