using System.Diagnostics.Metrics;

namespace Baton.Gateway.Diagnostics;

/// <summary>Baton's one <see cref="Meter"/> and its instruments. Instrument names are public API.</summary>
internal sealed class BatonMetrics
{
    public const string MeterName = "Baton";

    private readonly Counter<long> _sessionsCreated;
    private readonly Counter<long> _cookiesRejected;
    private readonly Counter<long> _sessionsRefused;
    private readonly Counter<long> _sessionsRepinned;
    private readonly Counter<long> _gatewayErrors;

    public BatonMetrics(IMeterFactory meterFactory)
    {
        var meter = meterFactory.Create(MeterName);
        _sessionsCreated = meter.CreateCounter<long>("baton.session.created", "{session}", "Sessions issued a new id by the gateway.");
        _cookiesRejected = meter.CreateCounter<long>("baton.session.cookie.rejected", "{cookie}", "Session cookies not adopted, by reason (malformed, bad_signature, unknown).");
        _sessionsRefused = meter.CreateCounter<long>("baton.session.refused", "{request}", "Requests refused a new session because the pin table is full.");
        _sessionsRepinned = meter.CreateCounter<long>("baton.session.repinned", "{session}", "Sessions moved to another destination because theirs was not available.");
        _gatewayErrors = meter.CreateCounter<long>("baton.gateway.errors", "{request}", "Unexpected errors in the gateway's own code, answered 503 instead of 500.");
    }

    public void SessionCreated() => _sessionsCreated.Add(1);

    public void CookieRejected(string reason) => _cookiesRejected.Add(1, new KeyValuePair<string, object?>("baton.reason", reason));

    public void SessionRefused() => _sessionsRefused.Add(1);

    public void SessionRepinned() => _sessionsRepinned.Add(1);

    public void GatewayError() => _gatewayErrors.Add(1);
}
