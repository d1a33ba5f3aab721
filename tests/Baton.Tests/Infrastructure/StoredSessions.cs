using Baton.Gateway.Store;
using Microsoft.Data.Sqlite;
using StackExchange.Redis;

namespace Baton.Tests.Infrastructure;

/// <summary>Reads what the gateway wrote, straight from the SQLite file and the Redis server.</summary>
internal static class StoredSessions
{
    public static StoredSession? FromJournal(string journalPath, string sessionId)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = journalPath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT version, state, owner, last_access, epoch FROM sessions WHERE id = $id";
        command.Parameters.AddWithValue("$id", sessionId);
        using var reader = command.ExecuteReader();
        return reader.Read() ? new StoredSession(reader.GetInt64(0), (byte[])reader.GetValue(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4)) : null;
    }

    /// <summary>The session's Redis key: its id in braces, the hash tag that keeps a session's keys in one cluster slot.</summary>
    public static string RedisKey(string sessionId, string keyPrefix = "baton:") => keyPrefix + "s:{" + sessionId + "}";

    /// <summary>The marker a plain Redis (or one under Sentinel) holds while it holds what the gateway wrote.</summary>
    public static string RedisMarker(string keyPrefix = "baton:") => keyPrefix + "marker:{0}";

    public static StoredSession? FromRedis(IDatabase redis, string sessionId, string keyPrefix = "baton:")
    {
        var fields = redis.HashGetAll(RedisKey(sessionId, keyPrefix)).ToDictionary(f => (string)f.Name!, f => f.Value);
        if (fields.Count == 0)
        {
            return null;
        }

        // The whole state with the deltas stored after it folded in, as the gateway reads it.
        var links = Enumerable.Range(1, fields.TryGetValue("n", out var n) ? (int)n : 0)
            .Select(i => Assert.Single(StateChain.ReadLinks((byte[])fields["l" + i]!)!))
            .ToList();
        var (state, digest) = StateChain.Fold((byte[])fields["s"]!, (string)fields["d"]!, links);
        Assert.NotEqual(StateChain.DamagedDigest, digest);
        return new StoredSession((long)fields["v"], state, fields.TryGetValue("o", out var o) ? (string?)o : null, (long)fields["a"], fields.TryGetValue("e", out var e) ? (long)e : 0);
    }
}
