namespace Baton.Gateway;

/// <summary>Names and defaults that are part of Baton's public surface: config keys, paths, policy names.</summary>
internal static class BatonConstants
{
    /// <summary>The configuration section of Baton's own settings.</summary>
    public const string ConfigSection = "Baton";

    /// <summary>The configuration section YARP reads routes and clusters from.</summary>
    public const string ProxyConfigSection = "ReverseProxy";

    /// <summary>The name that selects Baton's session affinity policy in a cluster's <c>SessionAffinity:Policy</c>.</summary>
    public const string AffinityPolicyName = "Baton";

    /// <summary>
    /// The name that selects Baton's passive health policy in a cluster's <c>HealthCheck:Passive:Policy</c>
    /// (required on clusters with Baton affinity).
    /// </summary>
    public const string PassiveHealthPolicyName = "Baton";

    /// <summary>
    /// The name that selects Baton's available-destinations policy in a cluster's
    /// <c>HealthCheck:AvailableDestinationsPolicy</c> (required on clusters with Baton affinity).
    /// </summary>
    public const string AvailableDestinationsPolicyName = "Baton";

    /// <summary>True for a cluster whose sessions Baton keeps: affinity enabled with Baton's policy.</summary>
    public static bool IsBatonAffinity([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] Yarp.ReverseProxy.Configuration.SessionAffinityConfig? affinity)
        => affinity is { Enabled: true } && string.Equals(affinity.Policy, AffinityPolicyName, StringComparison.OrdinalIgnoreCase);

    /// <summary>Paths the gateway answers itself; everything else is proxied.</summary>
    public static class Paths
    {
        public const string Prefix = "/_baton";
        public const string Live = "/_baton/live";
        public const string Ready = "/_baton/ready";
        public const string Admin = "/_baton/admin";
        public const string Status = "/_baton/status";
        public const string StatusJson = "/_baton/status.json";
        public const string Metrics = "/_baton/metrics";
    }

    /// <summary>Seconds a client is told to wait (<c>Retry-After</c>) when the gateway refuses a request for capacity.</summary>
    public const int RetryAfterSeconds = 1;
}
