using System.Diagnostics;

namespace Baton.Gateway.Diagnostics;

/// <summary>
/// The gateway's trace spans: <c>baton.checkpoint</c> (storing a backend's checkpoint, inside YARP's
/// <c>proxy.forwarder</c> activity), <c>baton.failover</c> (a failed attempt and the move of its session)
/// and <c>baton.restore</c> (installing a session's state on a backend). Session ids appear only hashed.
/// </summary>
internal static class BatonTelemetry
{
    public const string SourceName = "Baton";

    public static readonly ActivitySource Source = new(SourceName);
}
