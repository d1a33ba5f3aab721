using Baton.Backend;
using Microsoft.Data.Sqlite;
using StackExchange.Redis;

namespace Baton.Tests.Infrastructure;

/// <summary>A session as one tier holds it, decoded with the backend library's state format.</summary>
internal sealed record StoredSession(long Version, byte[] State, string? Owner, long UpdatedAt, long Epoch)
{
    public Dictionary<string, byte[]> Values
    {
        get
        {
            Assert.True(SessionStateCodec.TryDecode(State, out var values), "stored state should decode");
            return values;
        }
    }

    /// <summary>The value ISession.SetInt32 stored (4 bytes, big-endian).</summary>
    public int? Int32(string key) => Values.TryGetValue(key, out var v) ? (v[0] << 24) | (v[1] << 16) | (v[2] << 8) | v[3] : null;
}

/// <summary>Reads what the gateway wrote, straight from the SQLite file and the Redis server.</summary>
internal static class StoredSessions
{
    public static StoredSession? FromJournal(string journalPath, string sessionId)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = journalPath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT version, state, owner, updated_at, epoch FROM sessions WHERE id = $id";
        command.Parameters.AddWithValue("$id", sessionId);
        using var reader = command.ExecuteReader();
        return reader.Read() ? new StoredSession(reader.GetInt64(0), (byte[])reader.GetValue(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4)) : null;
    }

    public static StoredSession? FromRedis(IDatabase redis, string sessionId, string keyPrefix = "baton:")
    {
        var fields = redis.HashGetAll(keyPrefix + "s:" + sessionId).ToDictionary(f => (string)f.Name!, f => f.Value);
        return fields.Count == 0 ? null : new StoredSession((long)fields["v"], (byte[])fields["s"]!, fields.TryGetValue("o", out var o) ? (string?)o : null, (long)fields["u"], fields.TryGetValue("e", out var e) ? (long)e : 0);
    }
}
