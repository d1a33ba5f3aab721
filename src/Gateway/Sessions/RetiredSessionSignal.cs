namespace Baton.Gateway.Sessions;

/// <summary>
/// Set on a request whose backend refused it because its session was rotated away or ended there (410
/// <c>Baton-Retired</c>): the session is dead, so the failover step restores it nowhere and answers that it was renewed.
/// </summary>
internal sealed class RetiredSessionSignal
{
    public static readonly RetiredSessionSignal Instance = new();
}
