using StackExchange.Redis;

namespace Baton.Gateway.Store;

/// <summary>
/// The gateways' pin notices over Redis pub/sub, on the channel <c>{prefix}pins</c>. StackExchange.Redis subscribes
/// again by itself after a lost connection (a restart, a Sentinel or Cluster failover); whatever was published in
/// between is lost, so the listener is told each time the subscription comes back.
/// </summary>
internal sealed partial class RedisTier : IPinChannel
{
    private Action<PinNotice>? _onNotice;
    private Action? _onMissed;
    private int _listening;

    // The subscription's own connection, not any connection of the multiplexer: on a cluster or under Sentinel another
    // node's link coming back says nothing about the one that carries the channel.
    public bool IsListening => Volatile.Read(ref _listening) == 1 && Connection is { } redis && redis.GetSubscriber().IsConnected(_pinChannel);

    public void Announce(PinNotice notice)
    {
        var redis = Connection;
        if (redis is null || !redis.IsConnected)
        {
            return;
        }

        try
        {
            redis.GetSubscriber().Publish(_pinChannel, notice.Encode(), CommandFlags.FireAndForget);
        }
        catch (Exception ex) when (ex is RedisException or ObjectDisposedException)
        {
            // Best effort: a gateway that misses it revalidates its pin within the staleness bound, or meets the fence.
            Log.RedisCallFailed(_logger, "announce", ex);
        }
    }

    public void Listen(Action<PinNotice> onNotice, Action onMissed)
    {
        if (_configuration is null || Interlocked.CompareExchange(ref _onNotice, onNotice, null) is not null)
        {
            return;
        }

        _onMissed = onMissed;
        _ = SubscribeAsync();
    }

    private async Task SubscribeAsync()
    {
        try
        {
            // The tier starts connecting when the host starts it; the pin table may listen before that.
            while (_connecting is null)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), _time, _disposing.Token);
            }

            var redis = await _connecting.WaitAsync(_disposing.Token);
            redis.ConnectionFailed += (_, e) =>
            {
                if (e.ConnectionType == ConnectionType.Subscription)
                {
                    Volatile.Write(ref _listening, 0);
                }
            };
            redis.ConnectionRestored += (_, e) =>
            {
                if (e.ConnectionType == ConnectionType.Subscription && Volatile.Read(ref _listening) == 0)
                {
                    Volatile.Write(ref _listening, 1);
                    _onMissed?.Invoke();
                }
            };

            var backoff = TimeSpan.FromMilliseconds(200);
            while (true)
            {
                try
                {
                    await redis.GetSubscriber().SubscribeAsync(_pinChannel, (_, message) =>
                    {
                        if (PinNotice.Decode(message) is { } notice)
                        {
                            _onNotice?.Invoke(notice);
                        }
                    });
                    Volatile.Write(ref _listening, 1);

                    // Whatever was announced before the subscription was not heard.
                    _onMissed?.Invoke();
                    return;
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException)
                {
                    Log.RedisCallFailed(_logger, "subscribe", ex);
                    await Task.Delay(backoff, _time, _disposing.Token);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                }
            }
        }
        catch (OperationCanceledException) when (_disposing.IsCancellationRequested)
        {
            // Stopping.
        }
    }
}
