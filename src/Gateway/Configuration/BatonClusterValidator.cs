using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Configuration.ClusterValidators;

namespace Baton.Gateway.Configuration;

/// <summary>
/// Adds to YARP's own cluster checks the ones Baton relies on, each error naming the configuration key
/// to fix. Runs at startup (a failure stops the gateway) and on every reload (a failure keeps the last
/// good configuration).
/// </summary>
internal sealed class BatonClusterValidator : IClusterValidator
{
    public ValueTask ValidateAsync(ClusterConfig cluster, IList<Exception> errors)
    {
        var clusterKey = $"{BatonConstants.ProxyConfigSection}:Clusters:{cluster.ClusterId}";

        foreach (var (name, destination) in cluster.Destinations ?? new Dictionary<string, DestinationConfig>())
        {
            var destinationKey = $"{clusterKey}:Destinations:{name}";
            CheckHttpUri(destinationKey + ":Address", destination.Address, required: true, errors);
            CheckHttpUri(destinationKey + ":Health", destination.Health, required: false, errors);
        }

        var affinity = cluster.SessionAffinity;
        if (BatonConstants.IsBatonAffinity(affinity))
        {
            var affinityKey = clusterKey + ":SessionAffinity";
            if (!IsCookieToken(affinity.AffinityKeyName))
            {
                errors.Add(new ArgumentException($"{affinityKey}:AffinityKeyName is the session cookie's name and must be a non-empty cookie token (letters, digits and !#$%&'*+-.^_`|~); it is '{affinity.AffinityKeyName}'."));
            }

            var passive = cluster.HealthCheck?.Passive;
            if (passive?.Enabled != true || !string.Equals(passive.Policy, BatonConstants.PassiveHealthPolicyName, StringComparison.OrdinalIgnoreCase))
            {
                errors.Add(new ArgumentException($"{clusterKey}:HealthCheck:Passive must have Enabled true and Policy '{BatonConstants.PassiveHealthPolicyName}' on a cluster with Baton affinity: it takes a failed backend out at once and never blames one for a client's failure (it is Enabled {passive?.Enabled?.ToString() ?? "unset"}, Policy '{passive?.Policy}')."));
            }

            var available = cluster.HealthCheck?.AvailableDestinationsPolicy;
            if (!string.Equals(available, BatonConstants.AvailableDestinationsPolicyName, StringComparison.OrdinalIgnoreCase))
            {
                errors.Add(new ArgumentException($"{clusterKey}:HealthCheck:AvailableDestinationsPolicy must be '{BatonConstants.AvailableDestinationsPolicyName}' on a cluster with Baton affinity: it leaves out draining destinations and never sends requests to destinations known to be down (it is '{available}')."));
            }

            if (affinity.Cookie?.SameSite == Microsoft.AspNetCore.Http.SameSiteMode.None && affinity.Cookie.SecurePolicy != Microsoft.AspNetCore.Http.CookieSecurePolicy.Always)
            {
                errors.Add(new ArgumentException($"{affinityKey}:Cookie:SameSite is None, which browsers accept only on a Secure cookie: set {affinityKey}:Cookie:SecurePolicy to Always (and serve over HTTPS), or use Lax."));
            }

            if (affinity.Cookie?.HttpOnly == false)
            {
                errors.Add(new ArgumentException($"{affinityKey}:Cookie:HttpOnly must not be false: Baton's session cookie is never readable by scripts."));
            }
        }

        return ValueTask.CompletedTask;
    }

    private static void CheckHttpUri(string key, string? value, bool required, IList<Exception> errors)
    {
        if (string.IsNullOrEmpty(value))
        {
            if (required)
            {
                errors.Add(new ArgumentException($"{key} is required: an absolute http:// or https:// address."));
            }

            return;
        }

        if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            errors.Add(new ArgumentException($"{key} must be an absolute http:// or https:// address; it is '{value}'."));
        }
    }

    /// <summary>A cookie name must be an RFC 6265 token.</summary>
    private static bool IsCookieToken(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal)))
            {
                return false;
            }
        }

        return true;
    }
}
