namespace Baton.Gateway.Failover;

/// <summary>
/// A request body as it arrives from the client. Each read waits at most <c>Baton:Limits:RequestBodyIdleTimeout</c>
/// for the client's next bytes, then fails with <see cref="RequestBodyStalledException"/>. It also remembers
/// whether a read was still waiting on the client when an attempt ended: an attempt timeout then means the
/// client stalled, not that the backend failed to answer. Past <c>Baton:Limits:MaxRequestBodyBytes</c> read in
/// all, a read fails as Kestrel's own limit does (413), whatever the request: YARP lifts the server's size
/// and rate limits for gRPC over HTTP/2, which any client can claim to be.
/// </summary>
internal sealed class ClientBodyStream(Stream inner, TimeSpan idleTimeout, long maxBytes, TimeProvider time) : ReadOnlyStream
{
    private int _waiting;
    private long _read;

    /// <summary>True while (or when last) a read waited for the client's next bytes without getting them.</summary>
    public bool WaitingOnClient => Volatile.Read(ref _waiting) == 1;

    public override int Read(byte[] buffer, int offset, int count)
        => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (idleTimeout == Timeout.InfiniteTimeSpan)
        {
            Volatile.Write(ref _waiting, 1);
            var streamed = await inner.ReadAsync(buffer, cancellationToken);
            Volatile.Write(ref _waiting, 0);
            return Counted(streamed);
        }

        using var idle = new CancellationTokenSource(idleTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(idle.Token, cancellationToken);

        // Left set when the read throws (stalled, cancelled by the attempt timeout, or the client broke off).
        Volatile.Write(ref _waiting, 1);
        int read;
        try
        {
            read = await inner.ReadAsync(buffer, linked.Token);
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new RequestBodyStalledException(idleTimeout);
        }

        Volatile.Write(ref _waiting, 0);
        return Counted(read);
    }

    // Past the limit the request is refused as Kestrel refuses it: 413, the client's failure.
    private int Counted(int read)
    {
        if (Interlocked.Add(ref _read, read) > maxBytes)
        {
            throw new BadHttpRequestException($"The request body is larger than Baton:Limits:MaxRequestBodyBytes ({maxBytes} bytes).", StatusCodes.Status413PayloadTooLarge);
        }

        return read;
    }
}

/// <summary>The client sent none of its body's next bytes within <c>Baton:Limits:RequestBodyIdleTimeout</c>.</summary>
internal sealed class RequestBodyStalledException(TimeSpan idleTimeout)
    : IOException($"The client sent no more of its request body within {idleTimeout} (Baton:Limits:RequestBodyIdleTimeout).");
