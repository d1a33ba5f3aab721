using System.Security.Cryptography;
using Baton.Protocol;

namespace Baton.Tests.Protocol;

/// <summary>The reused per-thread hashes give exactly what one-shot hashing gives, whatever came before.</summary>
[Trait("Category", "Unit")]
public sealed class HashingTests
{
    [Fact]
    public void Hmac_MatchesOneShot_AcrossRepeatedCalls_ManyKeys_AndKeysComingBack()
    {
        var keys = Enumerable.Range(0, 40).Select(_ => RandomNumberGenerator.GetBytes(32)).ToArray();
        var actual = new byte[32];

        // More keys than a thread keeps, each used twice and in turn, so the cache is refilled and started over.
        for (var round = 0; round < 3; round++)
        {
            foreach (var key in keys)
            {
                var data = RandomNumberGenerator.GetBytes(Random.Shared.Next(0, 2000));
                Hashing.Hmac(key, data, actual);
                Assert.Equal(HMACSHA256.HashData(key, data), actual);
                Hashing.Hmac(key, data, actual);
                Assert.Equal(HMACSHA256.HashData(key, data), actual);
            }
        }
    }

    [Fact]
    public void Hmac_OfTwoArraysWithTheSameKeyBytes_IsTheSame()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var copy = key.ToArray();
        var data = "restore\n1"u8.ToArray();
        var first = new byte[32];
        var second = new byte[32];

        Hashing.Hmac(key, data, first);
        Hashing.Hmac(copy, data, second);

        Assert.Equal(first, second);
    }

    [Fact]
    public void Sha256_MatchesOneShot_AcrossRepeatedCalls()
    {
        var actual = new byte[32];
        foreach (var length in new[] { 0, 1, 63, 64, 65, 1024, 1024 * 1024 })
        {
            var data = RandomNumberGenerator.GetBytes(length);
            Hashing.Sha256(data, actual);
            Assert.Equal(SHA256.HashData(data), actual);
        }
    }
}
