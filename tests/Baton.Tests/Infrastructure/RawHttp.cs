using System.Net.Sockets;
using System.Text;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// An HTTP/1.1 client on a bare socket, for what HttpClient will not do: send part of a body and stall,
/// or break off in the middle of one.
/// </summary>
internal sealed class RawHttp : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;

    private RawHttp(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RawHttp> ConnectAsync(Uri server)
    {
        var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port);
        return new RawHttp(tcp);
    }

    /// <summary>
    /// Sends a request's head (with its Content-Length) and the first <paramref name="sent"/> bytes of its body:
    /// <paramref name="start"/>, then spaces (so a JSON body stays readable as far as it goes).
    /// </summary>
    public async Task SendPartAsync(string method, string path, long contentLength, int sent, string start = "", string? cookie = null)
    {
        var head = new StringBuilder()
            .Append(System.Globalization.CultureInfo.InvariantCulture, $"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n")
            .Append(System.Globalization.CultureInfo.InvariantCulture, $"Content-Length: {contentLength}\r\n");
        if (cookie is not null)
        {
            head.Append(System.Globalization.CultureInfo.InvariantCulture, $"Cookie: {cookie}\r\n");
        }

        await _stream.WriteAsync(Encoding.ASCII.GetBytes(head.Append("\r\n").ToString()));
        var body = new byte[sent];
        Array.Fill(body, (byte)' ');
        Encoding.ASCII.GetBytes(start).CopyTo(body, 0);
        await _stream.WriteAsync(body);
        await _stream.FlushAsync();
    }

    /// <summary>Reads the status code of the answer, waiting at most <paramref name="timeout"/>; null when the connection closes without one.</summary>
    public async Task<int?> ReadStatusAsync(TimeSpan timeout)
    {
        using var deadline = new CancellationTokenSource(timeout);
        var received = new List<byte>();
        var buffer = new byte[4096];
        try
        {
            while (!Encoding.ASCII.GetString([.. received]).Contains("\r\n", StringComparison.Ordinal))
            {
                var read = await _stream.ReadAsync(buffer, deadline.Token);
                if (read == 0)
                {
                    return null;
                }

                received.AddRange(buffer.AsSpan(0, read).ToArray());
            }
        }
        catch (IOException)
        {
            return null;
        }

        var statusLine = Encoding.ASCII.GetString([.. received]).Split("\r\n")[0];
        return int.Parse(statusLine.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Resets the connection (RST): the client is gone mid-request.</summary>
    public void Abort()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Close();
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
