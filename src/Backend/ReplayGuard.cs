using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace Baton.Backend;

/// <summary>
/// Remembers the nonces of accepted restores until their timestamps leave the clock-skew window (after
/// which the timestamp check refuses them anyway), so a captured restore cannot be replayed.
/// </summary>
internal sealed class ReplayGuard(IOptions<BatonBackendOptions> options, TimeProvider time)
{
    private readonly ConcurrentDictionary<string, long> _seen = new(StringComparer.Ordinal);
    private readonly int _capacity = options.Value.Backend.MaxRememberedRestores;
    private readonly long _windowMs = (long)options.Value.Backend.ClockSkew.TotalMilliseconds;

    public enum Outcome
    {
        First,
        Replayed,
        Full,
    }

    public Outcome Remember(string nonce, long timestamp)
    {
        if (_seen.Count >= _capacity)
        {
            Forget();
            if (_seen.Count >= _capacity)
            {
                return Outcome.Full;
            }
        }

        return _seen.TryAdd(nonce, timestamp + _windowMs) ? Outcome.First : Outcome.Replayed;
    }

    /// <summary>Drops nonces whose restores would now be refused as too old.</summary>
    public void Forget()
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var (nonce, expires) in _seen)
        {
            if (expires < now)
            {
                _seen.TryRemove(new KeyValuePair<string, long>(nonce, expires));
            }
        }
    }
}
