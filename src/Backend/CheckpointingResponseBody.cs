using System.IO.Pipelines;
using Microsoft.AspNetCore.Http.Features;

namespace Baton.Backend;

/// <summary>
/// Holds a response back until it can be led by the session's checkpoint: until the endpoint finishes,
/// the body passes the buffer limit, or the app starts the response itself (<c>Response.StartAsync</c>,
/// <c>DisableBuffering</c>, <c>SendFileAsync</c>). A plain flush does not release it. Just before the
/// first byte goes out, <see cref="BeforeStart"/> sets the headers and gives the bytes that lead the body.
/// </summary>
internal sealed class CheckpointingResponseBody(IHttpResponseBodyFeature inner, int limit, Func<bool, ValueTask<StartDecision>> beforeStart)
    : Stream, IHttpResponseBodyFeature
{
    private readonly MemoryStream _buffer = new();
    private PipeWriter? _writer;
    private bool _started;
    private bool _discard;

    /// <summary>Called once, with true when the response starts before the endpoint has finished.</summary>
    public Func<bool, ValueTask<StartDecision>> BeforeStart { get; } = beforeStart;

    /// <summary>True once headers have gone (or are going) to the client.</summary>
    public bool HasStarted => _started;

    public Stream Stream => this;

    public PipeWriter Writer => _writer ??= PipeWriter.Create(this, new StreamPipeWriterOptions(leaveOpen: true));

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public void DisableBuffering() => StartAsync().GetAwaiter().GetResult();

    public Task StartAsync(CancellationToken cancellationToken = default) => StartCoreAsync(streaming: true, cancellationToken);

    public async Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
    {
        await StartCoreAsync(streaming: true, cancellationToken);
        if (!_discard)
        {
            await inner.SendFileAsync(path, offset, count, cancellationToken);
        }
    }

    public async Task CompleteAsync()
    {
        await FinishAsync(CancellationToken.None);
        await inner.CompleteAsync();
    }

    /// <summary>Sends whatever is held back, led by the checkpoint, once the endpoint has finished.</summary>
    public async Task FinishAsync(CancellationToken cancellationToken)
    {
        if (_writer is not null)
        {
            await _writer.FlushAsync(cancellationToken);
        }

        await StartCoreAsync(streaming: false, cancellationToken);
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!_started && _buffer.Length + buffer.Length > limit)
        {
            await StartCoreAsync(streaming: true, cancellationToken);
        }

        if (_discard)
        {
            return;
        }

        if (_started)
        {
            await inner.Stream.WriteAsync(buffer, cancellationToken);
        }
        else
        {
            _buffer.Write(buffer.Span);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override Task FlushAsync(CancellationToken cancellationToken)
        => _started && !_discard ? inner.Stream.FlushAsync(cancellationToken) : Task.CompletedTask;

    public override void Flush() => FlushAsync().GetAwaiter().GetResult();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    private async Task StartCoreAsync(bool streaming, CancellationToken cancellationToken)
    {
        if (_started)
        {
            return;
        }

        _started = true;
        var decision = await BeforeStart(streaming);
        if (!decision.Prefix.IsEmpty)
        {
            await inner.Stream.WriteAsync(decision.Prefix, cancellationToken);
        }

        if (decision.Discard)
        {
            _discard = true;
            _buffer.SetLength(0);
            return;
        }

        if (_buffer.Length > 0)
        {
            await inner.Stream.WriteAsync(_buffer.GetBuffer().AsMemory(0, (int)_buffer.Length), cancellationToken);
        }

        _buffer.SetLength(0);
        if (streaming)
        {
            await inner.StartAsync(cancellationToken);
        }
    }

    /// <summary>
    /// The response is about to become a stream of its own (a WebSocket upgrade or an HTTP/2 extended CONNECT
    /// being accepted): what runs before the first byte runs now, and the body is the server's from here.
    /// False when that step refused the request's change instead (its refusal is then the response, sent here).
    /// </summary>
    public async Task<bool> BeginUpgradeAsync()
    {
        if (_started)
        {
            return !_discard;
        }

        _started = true;
        var decision = await BeforeStart(true);
        _discard = true;
        _buffer.SetLength(0);
        if (decision.Discard)
        {
            await inner.Stream.WriteAsync(decision.Prefix);
            return false;
        }

        return true;
    }

    /// <summary>Bytes held back so far: the app's body before the response starts.</summary>
    public long BufferedLength => _buffer.Length;
}

/// <summary>
/// The bytes that lead the response body (the checkpoint's state), or, when <see cref="Discard"/> is set,
/// the whole body of a response that replaces the app's, whose own writes are then dropped.
/// </summary>
internal readonly record struct StartDecision(ReadOnlyMemory<byte> Prefix, bool Discard)
{
    public static StartDecision Proceed(ReadOnlyMemory<byte> prefix) => new(prefix, Discard: false);

    public static StartDecision Replace(ReadOnlyMemory<byte> body) => new(body, Discard: true);
}
