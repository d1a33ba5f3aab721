using System.Buffers;
using Baton.Gateway.Configuration;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Failover;

/// <summary>How a request's body stands before it is forwarded.</summary>
/// <param name="Resendable">The body is kept whole (or there is none): it can be sent again to another backend.</param>
/// <param name="Failure">The client failed while sending it (stalled, too large, malformed, gone): answer that, send nothing.</param>
internal readonly record struct PreparedBody(bool Resendable, AttemptFailure? Failure);

/// <summary>
/// Reads a request's body from the client before any backend sees it, as careful edge proxies do
/// (nginx's request buffering, HAProxy's <c>http-buffer-request</c>): a client that stalls, sends too much
/// or goes away does so while only the gateway waits for it, so it can never look like a backend that
/// failed to answer. Bodies up to <c>Baton:Failover:MaxBufferedRequestBytes</c> are kept whole and can
/// be resent after a failover; larger or streaming ones are forwarded as they arrive and not resent.
/// Either way every read waits at most <c>Baton:Limits:RequestBodyIdleTimeout</c> for the client.
/// </summary>
internal sealed class RequestBodyBuffer(IOptions<BatonOptions> options, TimeProvider time)
{
    private const int MemoryThreshold = 64 * 1024;
    private const int ChunkSize = 16 * 1024;
    private readonly int _maxBuffered = options.Value.Failover.MaxBufferedRequestBytes;
    private readonly TimeSpan _idleTimeout = options.Value.Limits.RequestBodyIdleTimeout;
    private readonly long _maxBody = options.Value.Limits.MaxRequestBodyBytes;
    private readonly long _budget = options.Value.Limits.MaxBufferedBodiesBytes;
    private long _held;

    /// <summary>Bytes of request bodies held for resending right now (reserved at their full size).</summary>
    public long HeldBytes => Interlocked.Read(ref _held);

    public async Task<PreparedBody> PrepareAsync(HttpContext context)
    {
        var request = context.Request;

        // A WebSocket (HTTP/1.1 upgrade or HTTP/2 extended CONNECT) or a gRPC call is a stream that may
        // rightly go quiet for long: never read ahead, and no idle limit of the gateway's own (the route's
        // activity timeout governs it); a stall is still known to be the client's, and the size limit holds.
        // A WebSocket handshake carries no body until it is accepted, so one the backend refused unseen (it
        // restarted empty, the connection was refused) goes to the next backend like any request; once
        // accepted it is a stream and never resent. A gRPC call's messages stream from the start: never resent.
        if (IsWebSocketHandshake(context) || IsGrpc(context.Request))
        {
            var stream = new ClientBodyStream(request.Body, Timeout.InfiniteTimeSpan, _maxBody, time);
            context.Features.Set(stream);
            request.Body = stream;
            return new PreparedBody(Resendable: IsWebSocketHandshake(context), Failure: null);
        }

        // HTTP/2 and HTTP/3 bodies need no Content-Length: ask the server whether one follows.
        if (request.ContentLength is 0 || context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == false)
        {
            return new PreparedBody(Resendable: true, Failure: null);
        }

        var client = new ClientBodyStream(request.Body, _idleTimeout, _maxBody, time);
        context.Features.Set(client);
        // Past Baton:Limits:MaxBufferedBodiesBytes held at once, a body streams as it arrives (and is not
        // resent): holding bodies for a resend must not let clients take all the memory or disk.
        if (request.ContentLength > _maxBuffered
            || !TryReserve(context, request.ContentLength ?? _maxBuffered))
        {
            request.Body = client;
            return new PreparedBody(Resendable: false, Failure: null);
        }

        if (request.ContentLength is not null)
        {
            request.Body = client;
            request.EnableBuffering(MemoryThreshold, _maxBuffered);
            var (_, failure) = await ReadAsync(context, request.Body, copy: null);
            request.Body.Position = 0;
            return new PreparedBody(failure is null, failure);
        }

        // A body of unknown length: kept whole when it ends within the limit; past it, what was read goes
        // on followed by the rest as it arrives, and it is not resent.
        var kept = new MemoryStream();
        context.Response.RegisterForDispose(kept);
        var (overLimit, outcome) = await ReadAsync(context, client, kept);
        kept.Position = 0;
        request.Body = overLimit ? new PrefixedReadStream(kept, client) : kept;
        return new PreparedBody(!overLimit && outcome is null, outcome);
    }

    private static bool IsWebSocketHandshake(HttpContext context)
        => context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true
            || context.Features.Get<IHttpExtendedConnectFeature>()?.IsExtendedConnect == true;

    private static bool IsGrpc(HttpRequest request)
        => request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true;

    private bool TryReserve(HttpContext context, long bytes)
    {
        if (Interlocked.Add(ref _held, bytes) > _budget)
        {
            Interlocked.Add(ref _held, -bytes);
            return false;
        }

        context.Response.RegisterForDispose(new Reservation(this, bytes));
        return true;
    }

    private sealed class Reservation(RequestBodyBuffer owner, long bytes) : IDisposable
    {
        public void Dispose() => Interlocked.Add(ref owner._held, -bytes);
    }

    /// <summary>Reads the body to its end, into <paramref name="copy"/> when given (stopping once it holds more than the buffer limit).</summary>
    private async Task<(bool OverLimit, AttemptFailure? Failure)> ReadAsync(HttpContext context, Stream body, MemoryStream? copy)
    {
        var chunk = ArrayPool<byte>.Shared.Rent(ChunkSize);
        try
        {
            while (true)
            {
                var read = await body.ReadAsync(chunk.AsMemory(0, ChunkSize), context.RequestAborted);
                if (read == 0)
                {
                    return (false, null);
                }

                if (copy is not null)
                {
                    copy.Write(chunk, 0, read);
                    if (copy.Length > _maxBuffered)
                    {
                        return (true, null);
                    }
                }
            }
        }
        catch (RequestBodyStalledException)
        {
            return (false, AttemptFailure.BodyStalled);
        }
        catch (BadHttpRequestException ex)
        {
            return (false, AttemptFailure.ClientBody(ex));
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // The client went away (or reset its connection) in the middle of its body.
            return (false, AttemptFailure.BodyAborted);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }
}
