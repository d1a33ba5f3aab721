namespace Baton.Gateway.Configuration;

/// <summary>The gateway's own settings, bound from the <c>Baton</c> configuration section.</summary>
public sealed class BatonOptions
{
    /// <summary>
    /// The secret shared by the gateway and its backends (<c>Baton:Secret</c>). It signs session cookies.
    /// Required outside Development; at least <see cref="BatonOptionsValidator.MinimumSecretLength"/> characters.
    /// </summary>
    public string? Secret { get; set; }

    /// <summary>The older name of <see cref="BatonStoreOptions.Redis"/> (<c>Baton:Redis</c>), still read.</summary>
    public string? Redis { get; set; }

    /// <summary>The older name of <see cref="BatonJournalOptions.Path"/> (<c>Baton:JournalPath</c>), still read.</summary>
    public string? JournalPath { get; set; }

    /// <summary>
    /// On a graceful stop, how long the gateway keeps serving with readiness already failing, so load
    /// balancers stop sending to it first (<c>Baton:ShutdownDelay</c>). Default 2 s; 0 turns it off.
    /// Keep it under the host's shutdown timeout (30 s).
    /// </summary>
    public TimeSpan ShutdownDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Session identity and pinning (<c>Baton:Sessions</c>).</summary>
    public BatonSessionOptions Sessions { get; set; } = new();

    /// <summary>Checkpoint capture (<c>Baton:Checkpoints</c>).</summary>
    public BatonCheckpointOptions Checkpoints { get; set; } = new();

    /// <summary>The durable tier (<c>Baton:Journal</c>).</summary>
    public BatonJournalOptions Journal { get; set; } = new();

    /// <summary>The fast tier (<c>Baton:Store</c>).</summary>
    public BatonStoreOptions Store { get; set; } = new();

    /// <summary>Moving sessions off failed backends (<c>Baton:Failover</c>).</summary>
    public BatonFailoverOptions Failover { get; set; } = new();

    /// <summary>The admin endpoints (<c>Baton:Admin</c>).</summary>
    public BatonAdminOptions Admin { get; set; } = new();

    /// <summary>What the gateway accepts from clients (<c>Baton:Limits</c>).</summary>
    public BatonLimitsOptions Limits { get; set; } = new();

    /// <summary>Proxies in front of the gateway whose <c>X-Forwarded-*</c> headers are believed (<c>Baton:ForwardedHeaders</c>).</summary>
    public BatonForwardedHeadersOptions ForwardedHeaders { get; set; } = new();

    /// <summary>The certificate of the gateway's HTTPS endpoints (<c>Baton:Tls</c>).</summary>
    public BatonTlsOptions Tls { get; set; } = new();
}

/// <summary>
/// The certificate every HTTPS endpoint of the gateway serves (<c>Baton:Tls</c>): from PEM files (certificate
/// chain, and key when it is not in the same file) or a PKCS#12 (<c>.pfx</c>/<c>.p12</c>) file. The files are
/// checked for changes and a new certificate is served to new connections without a restart and without
/// closing a listener; a file that does not load keeps the current certificate in service. Empty: the gateway
/// serves no HTTPS of its own (endpoints come from <c>--urls</c>/<c>ASPNETCORE_URLS</c> as usual).
/// </summary>
public sealed class BatonTlsOptions
{
    /// <summary>The certificate file: PEM (leaf first, then its intermediates) or PKCS#12.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>The PEM private key file, when the key is not in <see cref="CertificatePath"/>.</summary>
    public string? KeyPath { get; set; }

    /// <summary>The PKCS#12 file's password, or the PEM key's when it is encrypted.</summary>
    public string? Password { get; set; }

    /// <summary>How often the files are checked for a new certificate. Default 10 s.</summary>
    public TimeSpan ReloadCheckInterval { get; set; } = TimeSpan.FromSeconds(10);
}

/// <summary>
/// Which peers may tell the gateway, with <c>X-Forwarded-For</c>, <c>-Proto</c> and <c>-Host</c>, who the client
/// is and whether it came over HTTPS (a TLS-terminating balancer in front). From anyone else those headers
/// are ignored. Both empty (the default): believed from nobody.
/// </summary>
public sealed class BatonForwardedHeadersOptions
{
    /// <summary>Addresses of trusted proxies, e.g. <c>10.0.0.5</c>.</summary>
    public string[] KnownProxies { get; set; } = [];

    /// <summary>Networks of trusted proxies in CIDR notation, e.g. <c>10.0.0.0/24</c>.</summary>
    public string[] KnownNetworks { get; set; } = [];
}

/// <summary>
/// What the gateway accepts from clients (<c>Baton:Limits</c>), applied to its server (Kestrel) at startup.
/// A client past one of them gets its own status (413, 431, 408) and reason, and no backend is involved.
/// </summary>
public sealed class BatonLimitsOptions
{
    /// <summary>Largest request body accepted; larger gets 413. Default 30,000,000 bytes.</summary>
    public long MaxRequestBodyBytes { get; set; } = 30_000_000;

    /// <summary>Largest total size of a request's headers; larger gets 431. Default 32 KiB.</summary>
    public int MaxRequestHeadersBytes { get; set; } = 32 * 1024;

    /// <summary>Longest a client may take to send its request headers; the connection is closed past it. Default 30 s.</summary>
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Slowest a request body may arrive, in bytes per second averaged after a 5 s grace period; slower gets
    /// 408. Default 240. 0 turns the check off (<see cref="RequestBodyIdleTimeout"/> still applies).
    /// </summary>
    public double MinRequestBodyBytesPerSecond { get; set; } = 240;

    /// <summary>
    /// Longest the gateway waits for the next bytes of a request body it reads before forwarding; past it
    /// the client gets 408 and no backend is involved. Default 10 s.
    /// </summary>
    public TimeSpan RequestBodyIdleTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Most bytes of request bodies held at once for resending after a failover (each reserved at its full
    /// size, or at <c>Baton:Failover:MaxBufferedRequestBytes</c> when its length is unknown). Past it a body
    /// streams to the backend as it arrives and is not resent. Default 256 MiB.
    /// </summary>
    public long MaxBufferedBodiesBytes { get; set; } = 256L * 1024 * 1024;

    /// <summary>Most client connections open at once; more wait in the listen backlog. Default 10,000.</summary>
    public long MaxConnections { get; set; } = 10_000;
}

/// <summary>Admin endpoint settings (<c>Baton:Admin</c>).</summary>
public sealed class BatonAdminOptions
{
    /// <summary>
    /// The bearer token the admin endpoints require (at least 32 characters). Empty: the admin endpoints
    /// are off and answer 404.
    /// </summary>
    public string? Token { get; set; }

    /// <summary>Accept admin requests from addresses other than loopback. Default false.</summary>
    public bool AllowRemote { get; set; }
}

/// <summary>Failover settings (<c>Baton:Failover</c>).</summary>
public sealed class BatonFailoverOptions
{
    /// <summary>Most destinations one request is sent to. Default 3.</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Longest a request waits for any healthy destination before 503 + Retry-After. Default 10 s.</summary>
    public TimeSpan NoDestinationWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest one restore may take, including waiting for a restore slot. Default 5 s.</summary>
    public TimeSpan RestoreTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Most restores running at once onto one destination, so a kill does not become a restore storm. Default 8.</summary>
    public int MaxConcurrentRestoresPerDestination { get; set; } = 8;

    /// <summary>Largest request body kept so the request can be resent elsewhere. Larger or streamed bodies are not resent. Default 1 MiB.</summary>
    public int MaxBufferedRequestBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// Resend requests a failed backend may already have processed even when they are not idempotent and
    /// carry no <c>Idempotency-Key</c>. Default false.
    /// </summary>
    public bool ResendNonIdempotent { get; set; }


    /// <summary>
    /// How often each destination's restore channel is checked: a backend process not checked yet gets one
    /// restore of an empty, throwaway session, so a refusal (another secret, a skewed clock) shows before a
    /// failover needs it. New processes seen in responses are checked at once. Default 5 s.
    /// </summary>
    public TimeSpan RestoreCheckInterval { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>When a response is released relative to its checkpoint being stored.</summary>
public enum DurabilityMode
{
    /// <summary>
    /// The default: a response is released only once its checkpoint is committed to the journal and
    /// written to Redis (when Redis is up). An acknowledged change survives any single failure.
    /// </summary>
    Durable,

    /// <summary>
    /// A response is released once its checkpoint is written to Redis; the journal commit follows without
    /// waiting. Risk: checkpoints acknowledged in the last moments before a gateway crash, and in that
    /// same window lost by Redis, are gone. With Redis down it behaves as <see cref="Durable"/>.
    /// </summary>
    RiskLossOnGatewayCrash,
}

/// <summary>Checkpoint capture settings (<c>Baton:Checkpoints</c>).</summary>
public sealed class BatonCheckpointOptions
{
    /// <summary>The largest session state stored. Backends roll back a change beyond it and answer 413. Default 1 MiB.</summary>
    public int MaxStateBytes { get; set; } = 1024 * 1024;

    /// <summary>See <see cref="DurabilityMode"/>. Default <see cref="DurabilityMode.Durable"/>.</summary>
    public DurabilityMode Durability { get; set; } = DurabilityMode.Durable;

    /// <summary>
    /// Most deltas stored after a session's last whole state: once its chain is this long (or holds more bytes than its
    /// state) the gateway asks its backend for a whole state, which ends the chain. 0 takes no deltas at all: backends
    /// always send whole states. Default 32.
    /// </summary>
    public int MaxDeltaChain { get; set; } = 32;
}

/// <summary>SQLite's <c>synchronous</c> setting for the journal.</summary>
public enum JournalSynchronous
{
    /// <summary>Every commit reaches the disk before it is acknowledged (default).</summary>
    Full,

    /// <summary>Commits survive a process crash but the last ones may be lost on power loss.</summary>
    Normal,
}

/// <summary>The database the journal is kept in (<c>Baton:Journal:Provider</c>).</summary>
public enum JournalProvider
{
    /// <summary>A SQLite file on the gateway's own disk (default): embedded, one gateway.</summary>
    Sqlite,

    /// <summary>A PostgreSQL server several gateways share.</summary>
    PostgreSql,

    /// <summary>A MySQL 8 or MariaDB server several gateways share.</summary>
    MySql,
}

/// <summary>Journal settings (<c>Baton:Journal</c>).</summary>
public sealed class BatonJournalOptions
{
    /// <summary>Where the journal is kept. Default <see cref="JournalProvider.Sqlite"/>.</summary>
    public JournalProvider Provider { get; set; } = JournalProvider.Sqlite;

    /// <summary>The SQLite journal file; relative paths are under the content root. Default <c>data/baton-journal.db</c>.</summary>
    public string Path { get; set; } = "data/baton-journal.db";

    /// <summary>
    /// The server journal's connection string (PostgreSql: Npgsql's, MySql: MySqlConnector's), naming its database.
    /// Its pool size and timeouts are <see cref="MaxConnections"/> and <see cref="CommandTimeout"/>.
    /// </summary>
    public string? ConnectionString { get; set; }

    /// <summary>Most connections the gateway opens to a server journal (the writer's and the reads'). Default 8.</summary>
    public int MaxConnections { get; set; } = 8;

    /// <summary>
    /// Longest a server journal may take to connect or to answer one statement; past it the write fails as on an
    /// unreachable server (acknowledged on Redis alone). Whole seconds. Default 2 s: every request whose change is in
    /// the batch waits that long when the server hangs.
    /// </summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Default <see cref="JournalSynchronous.Full"/>.</summary>
    public JournalSynchronous Synchronous { get; set; } = JournalSynchronous.Full;

    /// <summary>Most writes committed in one transaction (group commit). Default 256.</summary>
    public int MaxBatchSize { get; set; } = 256;

    /// <summary>Most writes waiting for the journal; beyond it a checkpoint is refused with 503. Default 10,000.</summary>
    public int QueueLength { get; set; } = 10_000;

    /// <summary>How often the journal drops long-expired rows, checkpoints its WAL and frees pages. Default 10 minutes.</summary>
    public TimeSpan CompactInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Longest a journal write waits for the file's lock while another process holds it (a backup, a tool);
    /// past it the write fails as on a failing disk. Whole seconds. Default 30 s.
    /// </summary>
    public TimeSpan LockTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Largest the journal may grow on disk (with its write-ahead log). Past it a change that would grow a
    /// session's state is refused with 503, as at <c>Baton:Sessions:MaxTotalStateBytes</c>; changes that do not
    /// grow it, and every read, go on. Default 16 GiB.
    /// </summary>
    public long MaxSizeBytes { get; set; } = 16L * 1024 * 1024 * 1024;
}

/// <summary>Redis tier settings (<c>Baton:Store</c>).</summary>
public sealed class BatonStoreOptions
{
    /// <summary>
    /// StackExchange.Redis configuration of the fast tier (<c>Baton:Store:Redis</c>), e.g. <c>127.0.0.1:6379</c>.
    /// Empty: the journal alone stores sessions.
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>Longest a request waits for a Redis read or write before going on with the journal alone. Default 50 ms.</summary>
    public TimeSpan RedisBudget { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Prefix of every Redis key Baton writes. Default <c>baton:</c>.</summary>
    public string RedisKeyPrefix { get; set; } = "baton:";

    /// <summary>Redis calls in a row that miss their budget or fail before Redis is skipped altogether. Default 5.</summary>
    public int RedisCircuitFailures { get; set; } = 5;

    /// <summary>How long Redis is skipped once the circuit opens; then one call tries it again. Default 2 s.</summary>
    public TimeSpan RedisCircuitBreak { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Longest a starting gateway waits for Redis, to load what Redis holds newer than the journal (or to rebuild a
    /// damaged journal). Without Redis by then it starts from the journal alone. Default 2 s.
    /// </summary>
    public TimeSpan RedisStartupWait { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often the gateway checks whether Redis restarted or lost its data (and refills it). Default 2 s.</summary>
    public TimeSpan RedisCheckInterval { get; set; } = TimeSpan.FromSeconds(2);
}

/// <summary>Session identity and pinning settings (<c>Baton:Sessions</c>).</summary>
public sealed class BatonSessionOptions
{
    /// <summary>A session unused this long is forgotten; its cookie then gets a fresh session. Default 20 minutes.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(20);

    /// <summary>
    /// The most sessions with state the gateway keeps at once. A session whose first change would pass it is
    /// refused with 503 and <c>Retry-After</c> (the change is not kept); existing sessions keep working.
    /// Sessions without state never count. Default 1,000,000.
    /// </summary>
    public int MaxSessions { get; set; } = 1_000_000;

    /// <summary>
    /// The most sessions without state (visitors whose backend has not written to their session yet) pinned
    /// at once, in memory only. Past it the oldest are forgotten first: such a visitor just gets a new id.
    /// Default 100,000.
    /// </summary>
    public int MaxAnonymousSessions { get; set; } = 100_000;

    /// <summary>
    /// The most bytes of state the kept sessions hold together, each counted at the size of its latest
    /// checkpoint: what Redis and the journal must hold. A change that would grow the total past it is refused
    /// with 503 and <c>Retry-After</c> (the change is not kept); changes that do not grow a session's state
    /// always go on. Default 4 GiB.
    /// </summary>
    public long MaxTotalStateBytes { get; set; } = 4L * 1024 * 1024 * 1024;

    /// <summary>
    /// Over HTTPS, name the session cookie <c>__Host-</c> + its name (host-only, Secure, Path=/): no subdomain
    /// can plant or overwrite it. Default true.
    /// </summary>
    public bool HostPrefix { get; set; } = true;

    /// <summary>How often expired sessions are swept from the pin table. Default 1 minute.</summary>
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long the tiers keep a session after its last use: the idle timeout, plus how stale a stored last use
    /// may be (an eighth of it), plus a purge interval. Past it no gateway would load the session.
    /// </summary>
    public TimeSpan Retention => IdleTimeout + (IdleTimeout / 8) + PurgeInterval;
}
