namespace Baton.Tests.Infrastructure;

/// <summary>Reading the gateway's session id from a client's cookie jar.</summary>
internal static class SessionCookies
{
    public static string SessionIdOf(HttpClient client, TestGateway gateway)
    {
        var cookie = CookieJar.Of(client).GetCookies(gateway.Address)[TestGateway.CookieName]?.Value;
        Assert.NotNull(cookie);
        return cookie[..Baton.Protocol.ProtocolConstants.IdLength];
    }
}
