using Microsoft.Extensions.Options;

namespace Baton.Gateway.Configuration;

/// <summary>
/// Checks every Baton setting at startup and reports all problems at once, each naming its configuration key.
/// </summary>
internal sealed class BatonOptionsValidator(IHostEnvironment environment) : IValidateOptions<BatonOptions>, IPostConfigureOptions<BatonOptions>
{
    public const int MinimumSecretLength = Baton.Protocol.ProtocolConstants.MinimumSecretLength;

    private static readonly TimeSpan MinimumIdleTimeout = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MaximumIdleTimeout = TimeSpan.FromDays(30);
    private static readonly TimeSpan MinimumPurgeInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaximumPurgeInterval = TimeSpan.FromHours(1);

    public void PostConfigure(string? name, BatonOptions options)
    {
        if (string.IsNullOrEmpty(options.Secret) && environment.IsDevelopment())
        {
            options.Secret = Baton.Protocol.ProtocolConstants.DevelopmentSecret;
        }

        // The older names at the section's root still work; the newer ones win where both are set (validated below).
        if (!string.IsNullOrWhiteSpace(options.Redis) && string.IsNullOrWhiteSpace(options.Store.Redis))
        {
            options.Store.Redis = options.Redis;
        }

        if (!string.IsNullOrWhiteSpace(options.JournalPath) && options.Journal.Path == new BatonJournalOptions().Path)
        {
            options.Journal.Path = options.JournalPath;
        }

        // Certificate files named relative to the content root, like the journal.
        options.Tls.CertificatePath = UnderContentRoot(options.Tls.CertificatePath);
        options.Tls.KeyPath = UnderContentRoot(options.Tls.KeyPath);
    }

    private string? UnderContentRoot(string? path)
        => string.IsNullOrWhiteSpace(path) ? null : Path.GetFullPath(path, environment.ContentRootPath);

    public ValidateOptionsResult Validate(string? name, BatonOptions options)
    {
        var errors = new List<string>();
        const string Section = BatonConstants.ConfigSection;

        if (string.IsNullOrEmpty(options.Secret))
        {
            errors.Add($"{Section}:Secret is required outside the Development environment: set it to at least {MinimumSecretLength} random characters (for example the environment variable Baton__Secret), the same value on the gateway and its backends.");
        }
        else if (options.Secret.Length < MinimumSecretLength)
        {
            errors.Add($"{Section}:Secret must be at least {MinimumSecretLength} characters long (it has {options.Secret.Length}).");
        }
        else if (options.Secret == Baton.Protocol.ProtocolConstants.DevelopmentSecret && !environment.IsDevelopment())
        {
            errors.Add($"{Section}:Secret is the documented development secret, which anyone can read: outside the Development environment set one of your own (at least {MinimumSecretLength} random characters).");
        }

        if (options.Admin.AllowRemote && string.IsNullOrEmpty(options.Admin.Token) && !environment.IsDevelopment())
        {
            errors.Add($"{Section}:Admin:AllowRemote is true but {Section}:Admin:Token is empty: the status page and metrics would be served to any address without a token. Set a token (at least {MinimumSecretLength} characters), or leave AllowRemote false.");
        }

        var sessions = options.Sessions;
        if (sessions.IdleTimeout < MinimumIdleTimeout || sessions.IdleTimeout > MaximumIdleTimeout)
        {
            errors.Add($"{Section}:Sessions:IdleTimeout must be between {MinimumIdleTimeout} and {MaximumIdleTimeout} (it is {sessions.IdleTimeout}).");
        }

        if (sessions.MaxSessions < 1)
        {
            errors.Add($"{Section}:Sessions:MaxSessions must be at least 1 (it is {sessions.MaxSessions}).");
        }

        if (sessions.MaxAnonymousSessions is < 1 or > 100_000_000)
        {
            errors.Add($"{Section}:Sessions:MaxAnonymousSessions must be between 1 and 100000000 (it is {sessions.MaxAnonymousSessions}).");
        }

        if (sessions.MaxTotalStateBytes is < 1024 * 1024 or > 1024L * 1024 * 1024 * 1024 * 1024)
        {
            errors.Add($"{Section}:Sessions:MaxTotalStateBytes must be between 1048576 and 1125899906842624 (it is {sessions.MaxTotalStateBytes}).");
        }
        else if (sessions.MaxTotalStateBytes < options.Checkpoints.MaxStateBytes)
        {
            errors.Add($"{Section}:Sessions:MaxTotalStateBytes ({sessions.MaxTotalStateBytes}) is smaller than {Section}:Checkpoints:MaxStateBytes ({options.Checkpoints.MaxStateBytes}): one session could not hold its largest state.");
        }

        if (sessions.PurgeInterval < MinimumPurgeInterval || sessions.PurgeInterval > MaximumPurgeInterval)
        {
            errors.Add($"{Section}:Sessions:PurgeInterval must be between {MinimumPurgeInterval} and {MaximumPurgeInterval} (it is {sessions.PurgeInterval}).");
        }

        if (options.ShutdownDelay < TimeSpan.Zero || options.ShutdownDelay > TimeSpan.FromSeconds(25))
        {
            errors.Add($"{Section}:ShutdownDelay must be between 00:00:00 and 00:00:25, under the host's 30 s shutdown timeout (it is {options.ShutdownDelay}).");
        }

        if (!string.IsNullOrWhiteSpace(options.Redis) && !string.IsNullOrWhiteSpace(options.Store.Redis) && options.Redis != options.Store.Redis)
        {
            errors.Add($"{Section}:Redis and {Section}:Store:Redis are both set, differently: set {Section}:Store:Redis only ({Section}:Redis is its older name).");
        }

        if (!string.IsNullOrWhiteSpace(options.JournalPath) && options.Journal.Path != new BatonJournalOptions().Path && options.JournalPath != options.Journal.Path)
        {
            errors.Add($"{Section}:JournalPath and {Section}:Journal:Path are both set, differently: set {Section}:Journal:Path only ({Section}:JournalPath is its older name).");
        }

        if (!string.IsNullOrWhiteSpace(options.Store.Redis))
        {
            try
            {
                StackExchange.Redis.ConfigurationOptions.Parse(options.Store.Redis);
            }
            catch (ArgumentException ex)
            {
                errors.Add($"{Section}:Store:Redis is not a valid StackExchange.Redis configuration string: {ex.Message}");
            }
        }

        var checkpoints = options.Checkpoints;
        if (checkpoints.MaxStateBytes is < 1024 or > 256 * 1024 * 1024)
        {
            errors.Add($"{Section}:Checkpoints:MaxStateBytes must be between 1024 and 268435456 (it is {checkpoints.MaxStateBytes}).");
        }

        if (checkpoints.MaxDeltaChain is < 0 or > 1024)
        {
            errors.Add($"{Section}:Checkpoints:MaxDeltaChain must be between 0 (no deltas) and 1024 (it is {checkpoints.MaxDeltaChain}).");
        }

        if (!Enum.IsDefined(checkpoints.Durability))
        {
            errors.Add($"{Section}:Checkpoints:Durability must be one of {string.Join(", ", Enum.GetNames<DurabilityMode>())}.");
        }

        var journal = options.Journal;
        if (!Enum.IsDefined(journal.Provider))
        {
            errors.Add($"{Section}:Journal:Provider must be one of {string.Join(", ", Enum.GetNames<JournalProvider>())}.");
        }
        else if (journal.Provider == JournalProvider.Sqlite)
        {
            if (string.IsNullOrWhiteSpace(journal.Path))
            {
                errors.Add($"{Section}:Journal:Path must name the SQLite journal file.");
            }

            if (!string.IsNullOrWhiteSpace(journal.ConnectionString))
            {
                errors.Add($"{Section}:Journal:ConnectionString is set but {Section}:Journal:Provider is Sqlite: set the Provider (PostgreSql or MySql) of the server it names, or remove it.");
            }
        }
        else if (Store.ServerJournal.ConnectionStringProblem(journal.Provider, journal.ConnectionString) is { } problem)
        {
            errors.Add($"{Section}:Journal:ConnectionString {problem}");
        }

        if (journal.MaxConnections is < 1 or > 1000)
        {
            errors.Add($"{Section}:Journal:MaxConnections must be between 1 and 1000 (it is {journal.MaxConnections}).");
        }

        if (journal.CommandTimeout < TimeSpan.FromSeconds(1) || journal.CommandTimeout > TimeSpan.FromMinutes(5) || journal.CommandTimeout.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            errors.Add($"{Section}:Journal:CommandTimeout must be whole seconds between 00:00:01 and 00:05:00 (it is {journal.CommandTimeout}).");
        }

        if (journal.MaxBatchSize is < 1 or > 10_000)
        {
            errors.Add($"{Section}:Journal:MaxBatchSize must be between 1 and 10000 (it is {journal.MaxBatchSize}).");
        }

        if (journal.QueueLength is < 1 or > 1_000_000)
        {
            errors.Add($"{Section}:Journal:QueueLength must be between 1 and 1000000 (it is {journal.QueueLength}).");
        }

        if (journal.MaxSizeBytes is < 1024 * 1024 or > 1024L * 1024 * 1024 * 1024 * 1024)
        {
            errors.Add($"{Section}:Journal:MaxSizeBytes must be between 1048576 and 1125899906842624 (it is {journal.MaxSizeBytes}).");
        }

        if (journal.LockTimeout < TimeSpan.FromSeconds(1) || journal.LockTimeout > TimeSpan.FromMinutes(5) || journal.LockTimeout.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            errors.Add($"{Section}:Journal:LockTimeout must be whole seconds between 00:00:01 and 00:05:00 (it is {journal.LockTimeout}).");
        }

        if (journal.CompactInterval < TimeSpan.FromSeconds(1) || journal.CompactInterval > TimeSpan.FromDays(1))
        {
            errors.Add($"{Section}:Journal:CompactInterval must be between 00:00:01 and 1.00:00:00 (it is {journal.CompactInterval}).");
        }

        if (!Enum.IsDefined(journal.Synchronous))
        {
            errors.Add($"{Section}:Journal:Synchronous must be one of {string.Join(", ", Enum.GetNames<JournalSynchronous>())}.");
        }

        var store = options.Store;
        if (store.RedisBudget < TimeSpan.FromMilliseconds(1) || store.RedisBudget > TimeSpan.FromSeconds(10))
        {
            errors.Add($"{Section}:Store:RedisBudget must be between 00:00:00.001 and 00:00:10 (it is {store.RedisBudget}).");
        }

        if (store.RedisCircuitFailures is < 1 or > 1000)
        {
            errors.Add($"{Section}:Store:RedisCircuitFailures must be between 1 and 1000 (it is {store.RedisCircuitFailures}).");
        }

        if (store.RedisCircuitBreak < TimeSpan.FromMilliseconds(10) || store.RedisCircuitBreak > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Section}:Store:RedisCircuitBreak must be between 00:00:00.010 and 00:10:00 (it is {store.RedisCircuitBreak}).");
        }

        if (store.RedisStartupWait < TimeSpan.Zero || store.RedisStartupWait > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{Section}:Store:RedisStartupWait must be between 00:00:00 and 00:05:00 (it is {store.RedisStartupWait}).");
        }

        if (store.RedisCheckInterval < TimeSpan.FromMilliseconds(100) || store.RedisCheckInterval > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Section}:Store:RedisCheckInterval must be between 00:00:00.100 and 00:10:00 (it is {store.RedisCheckInterval}).");
        }

        if (string.IsNullOrEmpty(store.RedisKeyPrefix))
        {
            errors.Add($"{Section}:Store:RedisKeyPrefix must not be empty.");
        }
        else if (store.RedisKeyPrefix.AsSpan().IndexOfAny('{', '}') >= 0)
        {
            // Redis Cluster hashes the first {...} of a key: braces in the prefix would put every session in one slot.
            errors.Add($"{Section}:Store:RedisKeyPrefix must not contain '{{' or '}}' (it is {store.RedisKeyPrefix}): each session's id is the hash tag of its keys.");
        }

        if (!string.IsNullOrEmpty(options.Admin.Token) && options.Admin.Token.Length < MinimumSecretLength)
        {
            errors.Add($"{Section}:Admin:Token must be at least {MinimumSecretLength} characters long (it has {options.Admin.Token.Length}), or empty to turn the admin endpoints off.");
        }

        var failover = options.Failover;
        if (failover.MaxAttempts is < 1 or > 10)
        {
            errors.Add($"{Section}:Failover:MaxAttempts must be between 1 and 10 (it is {failover.MaxAttempts}).");
        }

        if (failover.NoDestinationWait < TimeSpan.Zero || failover.NoDestinationWait > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{Section}:Failover:NoDestinationWait must be between 00:00:00 and 00:05:00 (it is {failover.NoDestinationWait}).");
        }

        if (failover.RestoreTimeout < TimeSpan.FromMilliseconds(10) || failover.RestoreTimeout > TimeSpan.FromMinutes(5))
        {
            errors.Add($"{Section}:Failover:RestoreTimeout must be between 00:00:00.010 and 00:05:00 (it is {failover.RestoreTimeout}).");
        }

        if (failover.MaxConcurrentRestoresPerDestination is < 1 or > 10_000)
        {
            errors.Add($"{Section}:Failover:MaxConcurrentRestoresPerDestination must be between 1 and 10000 (it is {failover.MaxConcurrentRestoresPerDestination}).");
        }

        if (failover.MaxBufferedRequestBytes is < 0 or > 256 * 1024 * 1024)
        {
            errors.Add($"{Section}:Failover:MaxBufferedRequestBytes must be between 0 and 268435456 (it is {failover.MaxBufferedRequestBytes}).");
        }

        if (failover.RestoreCheckInterval < TimeSpan.FromMilliseconds(100) || failover.RestoreCheckInterval > TimeSpan.FromHours(1))
        {
            errors.Add($"{Section}:Failover:RestoreCheckInterval must be between 00:00:00.100 and 01:00:00 (it is {failover.RestoreCheckInterval}).");
        }

        ValidateLimits(options.Limits, errors);
        foreach (var proxy in options.ForwardedHeaders.KnownProxies)
        {
            if (!System.Net.IPAddress.TryParse(proxy, out _))
            {
                errors.Add($"{Section}:ForwardedHeaders:KnownProxies has '{proxy}', which is not an IP address.");
            }
        }

        foreach (var network in options.ForwardedHeaders.KnownNetworks)
        {
            if (!System.Net.IPNetwork.TryParse(network, out _))
            {
                errors.Add($"{Section}:ForwardedHeaders:KnownNetworks has '{network}', which is not a network in CIDR notation (like 10.0.0.0/24).");
            }
        }

        ValidateTls(options.Tls, errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void ValidateTls(BatonTlsOptions tls, List<string> errors)
    {
        const string Tls = BatonConstants.ConfigSection + ":Tls";
        if (string.IsNullOrWhiteSpace(tls.CertificatePath))
        {
            if (!string.IsNullOrWhiteSpace(tls.KeyPath))
            {
                errors.Add($"{Tls}:KeyPath is set but {Tls}:CertificatePath is not: name the certificate file too.");
            }

            return;
        }

        if (!File.Exists(tls.CertificatePath))
        {
            errors.Add($"{Tls}:CertificatePath is '{tls.CertificatePath}', which is not a file.");
        }

        if (!string.IsNullOrWhiteSpace(tls.KeyPath) && !File.Exists(tls.KeyPath))
        {
            errors.Add($"{Tls}:KeyPath is '{tls.KeyPath}', which is not a file.");
        }

        if (tls.ReloadCheckInterval < TimeSpan.FromMilliseconds(100) || tls.ReloadCheckInterval > TimeSpan.FromHours(24))
        {
            errors.Add($"{Tls}:ReloadCheckInterval must be between 00:00:00.100 and 1.00:00:00 (it is {tls.ReloadCheckInterval}).");
        }
    }

    private static void ValidateLimits(BatonLimitsOptions limits, List<string> errors)
    {
        const string Limits = BatonConstants.ConfigSection + ":Limits";
        if (limits.MaxRequestBodyBytes is < 1024 or > 64L * 1024 * 1024 * 1024)
        {
            errors.Add($"{Limits}:MaxRequestBodyBytes must be between 1024 and 68719476736 (it is {limits.MaxRequestBodyBytes}).");
        }

        if (limits.MaxRequestHeadersBytes is < 1024 or > 1024 * 1024)
        {
            errors.Add($"{Limits}:MaxRequestHeadersBytes must be between 1024 and 1048576 (it is {limits.MaxRequestHeadersBytes}).");
        }

        if (limits.RequestHeadersTimeout < TimeSpan.FromMilliseconds(100) || limits.RequestHeadersTimeout > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Limits}:RequestHeadersTimeout must be between 00:00:00.100 and 00:10:00 (it is {limits.RequestHeadersTimeout}).");
        }

        if (limits.MinRequestBodyBytesPerSecond is < 0 or > 1024 * 1024 || double.IsNaN(limits.MinRequestBodyBytesPerSecond))
        {
            errors.Add($"{Limits}:MinRequestBodyBytesPerSecond must be between 0 (off) and 1048576 (it is {limits.MinRequestBodyBytesPerSecond}).");
        }

        if (limits.RequestBodyIdleTimeout < TimeSpan.FromMilliseconds(100) || limits.RequestBodyIdleTimeout > TimeSpan.FromMinutes(10))
        {
            errors.Add($"{Limits}:RequestBodyIdleTimeout must be between 00:00:00.100 and 00:10:00 (it is {limits.RequestBodyIdleTimeout}).");
        }

        if (limits.MaxBufferedBodiesBytes is < 0 or > 1024L * 1024 * 1024 * 1024)
        {
            errors.Add($"{Limits}:MaxBufferedBodiesBytes must be between 0 and 1099511627776 (it is {limits.MaxBufferedBodiesBytes}).");
        }

        if (limits.MaxConnections is < 1 or > 10_000_000)
        {
            errors.Add($"{Limits}:MaxConnections must be between 1 and 10000000 (it is {limits.MaxConnections}).");
        }
    }
}
