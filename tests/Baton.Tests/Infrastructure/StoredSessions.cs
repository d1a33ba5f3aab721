using Baton.Gateway.Store;
using Baton.Protocol;
using Microsoft.Data.Sqlite;
using StackExchange.Redis;

namespace Baton.Tests.Infrastructure;

/// <summary>Reads what the gateway wrote, straight from the SQLite file and the Redis server.</summary>
internal static class StoredSessions
{
    /// <summary>The session as the SQLite file holds it: its whole state with the deltas stored after it applied.</summary>
    public static StoredSession? FromJournal(string journalPath, string sessionId)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = journalPath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var transaction = connection.BeginTransaction(deferred: true);
        using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            SELECT s.version, coalesce(t.state, x''), s.owner, s.last_access, s.epoch, coalesce(t.version, 0)
            FROM sessions s LEFT JOIN session_states t ON t.id = s.id WHERE s.id = $id
            """;
        command.Parameters.AddWithValue("$id", sessionId);
        using var reader = command.ExecuteReader();
        if (!reader.Read())
        {
            return null;
        }

        var state = (byte[])reader.GetValue(1);
        using var links = connection.CreateCommand();
        links.Transaction = transaction;
        links.CommandText = "SELECT delta FROM session_links WHERE id = $id AND version > $after ORDER BY version";
        links.Parameters.AddWithValue("$id", sessionId);
        links.Parameters.AddWithValue("$after", reader.GetInt64(5));
        using (var rows = links.ExecuteReader())
        {
            while (rows.Read())
            {
                Assert.True(KeyedState.TryApply(state, (byte[])rows.GetValue(0), out state), "a stored delta should apply");
            }
        }

        return new StoredSession(reader.GetInt64(0), state, reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4));
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
            .Select(i => StateChain.ReadLink((byte[])fields["l" + i]!)!)
            .ToList();
        var (state, digest) = StateChain.Fold((byte[])fields["s"]!, (string)fields["d"]!, links);
        Assert.NotEqual(StateChain.DamagedDigest, digest);
        return new StoredSession((long)fields["v"], state, fields.TryGetValue("o", out var o) ? (string?)o : null, (long)fields["a"], fields.TryGetValue("e", out var e) ? (long)e : 0);
    }
}
