namespace Baton.Gateway;

/// <summary>
/// What the gateway's own steps learned during one forwarding attempt, for the failover step to judge it
/// by: whether the gateway itself failed (a store it could not write), and whether the attempt's session
/// change was already stored. Set on the request by the transforms; cleared before a resend.
/// </summary>
internal sealed class AttemptSignals
{
    /// <summary>Why the gateway's own code failed this attempt (e.g. <c>pin_not_stored</c>); null when it did not.</summary>
    public string? GatewayFault { get; private set; }

    /// <summary>True once this attempt's checkpoint is stored: the request took effect and must never be sent again.</summary>
    public bool ChangeStored { get; private set; }

    /// <summary>
    /// True when this attempt's checkpoint was refused by the store — made in an epoch the session has left, or
    /// not newer than what is stored: its change was not kept, and its response must not be released as a success.
    /// </summary>
    public bool ChangeNotKept { get; private set; }

    public static void GatewayFailed(HttpContext context, string reason) => For(context).GatewayFault ??= reason;

    public static void Stored(HttpContext context) => For(context).ChangeStored = true;

    public static void NotKept(HttpContext context) => For(context).ChangeNotKept = true;

    private static AttemptSignals For(HttpContext context)
    {
        var signals = context.Features.Get<AttemptSignals>();
        if (signals is null)
        {
            signals = new AttemptSignals();
            context.Features.Set(signals);
        }

        return signals;
    }
}
