namespace Baton.Gateway.Failover;

/// <summary>A read-only stream of what was already read from a request body, followed by the rest of it.</summary>
internal sealed class PrefixedReadStream(Stream prefix, Stream rest) : ReadOnlyStream
{
    public override int Read(byte[] buffer, int offset, int count)
    {
        var read = prefix.Read(buffer, offset, count);
        return read > 0 ? read : rest.Read(buffer, offset, count);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await prefix.ReadAsync(buffer, cancellationToken);
        return read > 0 ? read : await rest.ReadAsync(buffer, cancellationToken);
    }
}
