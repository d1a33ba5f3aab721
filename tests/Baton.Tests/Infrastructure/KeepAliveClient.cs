using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// One browser on one kept-alive HTTP/1.1 connection, with the gateway's session cookie, that never sends a request
/// twice: when its connection breaks, that request gets no answer (null) and the next one opens a new connection.
/// HttpClient instead resends a request, POSTs included, when a reused connection closes before any byte of the
/// answer, so its user could not tell a change made twice from one made once.
/// </summary>
internal sealed class KeepAliveClient(Uri server) : IDisposable
{
    private TcpClient? _tcp;
    private Stream? _stream;
    private readonly byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;

    /// <summary>The session cookie (<c>name=value</c>) the gateway set last.</summary>
    public string? Cookie { get; set; }

    /// <summary>Connections opened so far.</summary>
    public int Connections { get; private set; }

    /// <summary>Sends a request with no body: its status and body, or null when the connection broke or closed before the whole answer (or the timeout passed).</summary>
    public async Task<(int Status, string Body)?> SendAsync(string method, string path, TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            if (_stream is null)
            {
                _tcp = new TcpClient { NoDelay = true };
                await _tcp.ConnectAsync(server.Host, server.Port, deadline.Token);
                _stream = _tcp.GetStream();
                (_start, _end) = (0, 0);
                Connections++;
            }

            var head = new StringBuilder().Append(CultureInfo.InvariantCulture, $"{method} {path} HTTP/1.1\r\nHost: {server.Authority}\r\nContent-Length: 0\r\n");
            if (Cookie is not null)
            {
                head.Append(CultureInfo.InvariantCulture, $"Cookie: {Cookie}\r\n");
            }

            await _stream.WriteAsync(Encoding.ASCII.GetBytes(head.Append("\r\n").ToString()), deadline.Token);
            var status = int.Parse((await ReadLineAsync(deadline.Token)).Split(' ')[1], CultureInfo.InvariantCulture);
            long? length = null;
            var (chunked, close) = (false, false);
            for (var line = await ReadLineAsync(deadline.Token); line.Length > 0; line = await ReadLineAsync(deadline.Token))
            {
                var (name, value) = (line[..line.IndexOf(':', StringComparison.Ordinal)].Trim(), line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim());
                if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
                {
                    length = long.Parse(value, CultureInfo.InvariantCulture);
                }
                else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
                {
                    chunked = value.Contains("chunked", StringComparison.OrdinalIgnoreCase);
                }
                else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase))
                {
                    close = value.Equals("close", StringComparison.OrdinalIgnoreCase);
                }
                else if (name.Equals("Set-Cookie", StringComparison.OrdinalIgnoreCase) && value.StartsWith(TestGateway.CookieName + "=", StringComparison.Ordinal))
                {
                    Cookie = value.Split(';')[0];
                }
            }

            var body = new MemoryStream();
            if (chunked)
            {
                for (var size = ChunkSize(await ReadLineAsync(deadline.Token)); size > 0; size = ChunkSize(await ReadLineAsync(deadline.Token)))
                {
                    await ReadExactlyAsync(body, size, deadline.Token);
                    await ReadLineAsync(deadline.Token);
                }

                await ReadLineAsync(deadline.Token);
            }
            else
            {
                await ReadExactlyAsync(body, length ?? 0, deadline.Token);
            }

            if (close)
            {
                Drop();
            }

            return (status, Encoding.UTF8.GetString(body.ToArray()));
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or EndOfStreamException or FormatException or IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            Drop();
            return null;
        }
    }

    public void Dispose() => Drop();

    private static long ChunkSize(string line) => long.Parse(line.Split(';')[0].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private void Drop()
    {
        _stream?.Dispose();
        _tcp?.Dispose();
        (_stream, _tcp) = (null, null);
    }

    private async Task<bool> FillAsync(CancellationToken cancellationToken)
    {
        if (_start == _end)
        {
            (_start, _end) = (0, 0);
        }

        var read = await _stream!.ReadAsync(_buffer.AsMemory(_end), cancellationToken);
        if (read == 0)
        {
            throw new EndOfStreamException("The connection closed before the whole answer.");
        }

        _end += read;
        return true;
    }

    private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var at = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (at >= 0)
            {
                var line = Encoding.ASCII.GetString(_buffer, _start, at - _start).TrimEnd('\r');
                _start = at + 1;
                return line;
            }

            if (_start > 0)
            {
                Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
                (_end, _start) = (_end - _start, 0);
            }

            await FillAsync(cancellationToken);
        }
    }

    private async Task ReadExactlyAsync(MemoryStream body, long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            if (_start == _end)
            {
                await FillAsync(cancellationToken);
            }

            var take = (int)Math.Min(count, _end - _start);
            body.Write(_buffer, _start, take);
            (_start, count) = (_start + take, count - take);
        }
    }
}
