namespace Baton.Gateway.Sessions;

/// <summary>
/// Set on a request whose backend refused it because its copy of the session is older than the
/// gateway's (409 <c>Baton-Stale</c>): the failover step restores the session there and resends.
/// </summary>
internal sealed class StaleSessionSignal
{
    public static readonly StaleSessionSignal Instance = new();
}
