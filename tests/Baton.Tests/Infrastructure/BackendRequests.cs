using Baton.Protocol;

namespace Baton.Tests.Infrastructure;

/// <summary>What a gateway sends a backend, made by hand for tests that speak to a backend library directly.</summary>
internal static class BackendRequests
{
    /// <summary>A <c>Baton-Session</c> grant of the session at that version and epoch, made now, with a minute's ttl and a 1 MiB cap.</summary>
    public static string Grant(ProtocolKeys keys, string sessionId, long version, long epoch)
        => new SessionGrant(sessionId, version, epoch, 60_000, 1 << 20, ProtocolTime.Now(TimeProvider.System)).Format(keys);

    /// <summary>Restores <paramref name="state"/> at that version and epoch onto the backend <paramref name="client"/> reaches, addressed to its incarnation.</summary>
    public static async Task<HttpResponseMessage> RestoreAsync(HttpClient client, ProtocolKeys keys, string sessionId, long version, long epoch, byte[] state)
    {
        using var probe = await client.GetAsync(new Uri("/health", UriKind.Relative));
        var incarnation = probe.Headers.GetValues(ProtocolConstants.IncarnationHeader).Single();
        using var request = new HttpRequestMessage(HttpMethod.Post, ProtocolConstants.RestorePath) { Content = new ByteArrayContent(state) };
        request.Headers.TryAddWithoutValidation(ProtocolConstants.RestoreHeader, new RestoreDescriptor(sessionId, version, epoch, state.Length, Ids.Sha256(state), incarnation, ProtocolTime.Now(TimeProvider.System), Ids.New()).Format(keys));
        return await client.SendAsync(request);
    }
}
