using System.Security.Cryptography;

namespace Baton.Protocol;

/// <summary>
/// HMAC-SHA256 and SHA-256 through hash objects kept per thread and reused. Every request signs or checks
/// a few short texts; a one-shot call sets up the digest and the key each time, which costs more than
/// hashing the text itself.
/// </summary>
internal static class Hashing
{
    // Few keys live in a process (one per purpose); a thread that has seen more starts over, so keys of
    // gateways and backends that came and went (in tests) are not kept for ever.
    private const int MaxKeysPerThread = 16;

    [ThreadStatic]
    private static Dictionary<byte[], IncrementalHash>? t_hmacs;

    [ThreadStatic]
    private static IncrementalHash? t_sha256;

    public static void Hmac(byte[] key, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        var hmacs = t_hmacs ??= new Dictionary<byte[], IncrementalHash>(ReferenceEqualityComparer.Instance);
        if (!hmacs.TryGetValue(key, out var hmac))
        {
            if (hmacs.Count >= MaxKeysPerThread)
            {
                foreach (var old in hmacs.Values)
                {
                    old.Dispose();
                }

                hmacs.Clear();
            }

            hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
            hmacs[key] = hmac;
        }

        hmac.AppendData(data);
        hmac.GetHashAndReset(destination);
    }

    public static void Sha256(ReadOnlySpan<byte> data, Span<byte> destination)
    {
        var sha = t_sha256 ??= IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(data);
        sha.GetHashAndReset(destination);
    }
}
