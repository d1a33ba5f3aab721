using Baton.Protocol;
using Baton.Backend;

namespace Baton.Tests.Infrastructure;

/// <summary>A session as one tier holds it, decoded with the backend library's state format.</summary>
internal sealed record StoredSession(long Version, byte[] State, string? Owner, long LastAccess, long Epoch)
{
    public Dictionary<string, byte[]> Values
    {
        get
        {
            Assert.True(KeyedState.TryDecode(State, out var values), "stored state should decode");
            return values;
        }
    }

    /// <summary>The value ISession.SetInt32 stored (4 bytes, big-endian).</summary>
    public int? Int32(string key) => Values.TryGetValue(key, out var v) ? (v[0] << 24) | (v[1] << 16) | (v[2] << 8) | v[3] : null;
}
