using Baton.Tests.Infrastructure;

namespace Baton.Tests.Configuration;

/// <summary>A bad setting stops the gateway before it serves, with a message naming the key to fix.</summary>
[Trait("Category", "Functional")]
public sealed class StartupValidationTests
{
    private static readonly string[] Destinations =
    [
        "--ReverseProxy:Clusters:demo:Destinations:b1:Address=http://127.0.0.1:1",
        "--ReverseProxy:Clusters:demo:Destinations:b2:Address=http://127.0.0.1:2",
        "--ReverseProxy:Clusters:demo:Destinations:b3:Address=http://127.0.0.1:3",
    ];

    public static TheoryData<string, string[]> BadSettings => new()
    {
        { "Baton:Secret", [] },
        { "Baton:Secret must be at least 32", ["--Baton:Secret=short"] },
        { "Baton:Sessions:IdleTimeout", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Sessions:IdleTimeout=00:00:00"] },
        { "Baton:Sessions:IdleTimeout", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Sessions:IdleTimeout=soon"] },
        { "Baton:Sessions:MaxSessions", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Sessions:MaxSessions=0"] },
        { "Baton:Sessions:PurgeInterval", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Sessions:PurgeInterval=-00:00:01"] },
        { "Baton:Failover:RestoreCheckInterval must be between", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Failover:RestoreCheckInterval=00:00:00"] },
        { "ReverseProxy:Clusters:demo:Destinations:b2:Address", [$"--Baton:Secret={TestGateway.Secret}", "--ReverseProxy:Clusters:demo:Destinations:b2:Address=not a url"] },
        { "ReverseProxy:Clusters:demo:Destinations:b2:Address", [$"--Baton:Secret={TestGateway.Secret}", "--ReverseProxy:Clusters:demo:Destinations:b2:Address=ftp://127.0.0.1:21"] },
        { "ReverseProxy:Clusters:demo:SessionAffinity:AffinityKeyName", [$"--Baton:Secret={TestGateway.Secret}", "--ReverseProxy:Clusters:demo:SessionAffinity:AffinityKeyName=bad name"] },
        { "ReverseProxy:Clusters:demo:SessionAffinity:Cookie:HttpOnly", [$"--Baton:Secret={TestGateway.Secret}", "--ReverseProxy:Clusters:demo:SessionAffinity:Cookie:HttpOnly=false"] },
        { "ReverseProxy:Clusters:demo:HealthCheck:Passive must have Enabled true and Policy 'Baton'", [$"--Baton:Secret={TestGateway.Secret}", "--ReverseProxy:Clusters:demo:HealthCheck:Passive:Policy=TransportFailureRate"] },
        { "ReverseProxy:Clusters:demo:HealthCheck:Passive must have Enabled true and Policy 'Baton'", [$"--Baton:Secret={TestGateway.Secret}", "--ReverseProxy:Clusters:demo:HealthCheck:Passive:Enabled=false"] },
        { "Baton:Limits:MaxRequestBodyBytes must be between", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Limits:MaxRequestBodyBytes=10"] },
        { "Baton:Limits:MaxRequestHeadersBytes must be between", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Limits:MaxRequestHeadersBytes=0"] },
        { "Baton:Limits:RequestHeadersTimeout must be between", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Limits:RequestHeadersTimeout=00:00:00"] },
        { "Baton:Limits:MinRequestBodyBytesPerSecond must be between", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Limits:MinRequestBodyBytesPerSecond=-1"] },
        { "Baton:Limits:RequestBodyIdleTimeout must be between", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Limits:RequestBodyIdleTimeout=00:00:00"] },
        { "Baton:Limits:MaxConnections must be between", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Limits:MaxConnections=0"] },
        { "Baton:Secret is the documented development secret", [$"--Baton:Secret={Baton.Protocol.ProtocolConstants.DevelopmentSecret}"] },
        { "Baton:Admin:AllowRemote is true but Baton:Admin:Token is empty", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Admin:AllowRemote=true"] },
        { "ReverseProxy:Clusters:demo:SessionAffinity:Cookie:SameSite is None", [$"--Baton:Secret={TestGateway.Secret}", "--ReverseProxy:Clusters:demo:SessionAffinity:Cookie:SameSite=None"] },
        { "session affinity policy 'Sticky' set on the cluster 'demo'", [$"--Baton:Secret={TestGateway.Secret}", "--ReverseProxy:Clusters:demo:SessionAffinity:Policy=Sticky"] },
        { "Baton:Tls:CertificatePath is '/nonexistent/gateway.pem', which is not a file", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Tls:CertificatePath=/nonexistent/gateway.pem"] },
        { "Baton:Tls:KeyPath is set but Baton:Tls:CertificatePath is not", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Tls:KeyPath=/nonexistent/gateway.key"] },
        { "Baton:Journal:Provider", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Journal:Provider=Oracle"] },
        { "Baton:Journal:ConnectionString must be set for the PostgreSql journal", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Journal:Provider=PostgreSql"] },
        { "Baton:Journal:ConnectionString is not a valid PostgreSql connection string", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Journal:Provider=PostgreSql", "--Baton:Journal:ConnectionString=Hots=db;Database=baton"] },
        { "Baton:Journal:ConnectionString names no Host", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Journal:Provider=PostgreSql", "--Baton:Journal:ConnectionString=Database=baton"] },
        { "Baton:Journal:ConnectionString must name the MySQL server (Server) and its database (Database)", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Journal:Provider=MySql", "--Baton:Journal:ConnectionString=Server=db"] },
        { "Baton:Journal:ConnectionString is not a valid MySql connection string", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Journal:Provider=MySql", "--Baton:Journal:ConnectionString=Server=db;Database=baton;Port=many"] },
        { "Baton:Journal:ConnectionString is set but Baton:Journal:Provider is Sqlite", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Journal:ConnectionString=Host=db"] },
        { "Baton:Journal:MaxConnections must be between", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Journal:MaxConnections=0"] },
        { "Baton:Journal:CommandTimeout must be whole seconds", [$"--Baton:Secret={TestGateway.Secret}", "--Baton:Journal:CommandTimeout=00:00:01.500"] },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task BadSetting_StopsStartup_WithAMessageNamingIt(string expected, string[] settings)
    {
        var error = await StartupErrorAsync([.. Destinations, .. settings]);

        Assert.NotNull(error);
        Assert.Contains(expected, Describe(error), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AllBadBatonSettings_AreReportedTogether()
    {
        var error = await StartupErrorAsync([.. Destinations, "--Baton:Secret=short", "--Baton:Sessions:MaxSessions=0", "--Baton:Sessions:IdleTimeout=00:00:00"]);

        var message = Describe(Assert.IsAssignableFrom<Exception>(error));
        Assert.Contains("Baton:Secret", message, StringComparison.Ordinal);
        Assert.Contains("Baton:Sessions:MaxSessions", message, StringComparison.Ordinal);
        Assert.Contains("Baton:Sessions:IdleTimeout", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingSecret_InDevelopment_UsesTheDocumentedDevelopmentSecret()
    {
        var journal = Path.Combine(TestPaths.NewFolder("dev"), "journal.db");
        await using var app = TestGateway.CreateApp(["--urls=http://127.0.0.1:0", $"--Baton:JournalPath={journal}", .. Destinations], environment: "Development");

        await app.StartAsync();

        // The gateway signs with the documented secret: a cookie made with it by anyone is one of its own.
        var id = Baton.Gateway.Sessions.SessionId.New();
        var documented = new Baton.Gateway.Sessions.SessionCookie(new Baton.Protocol.ProtocolKeys(Baton.Protocol.ProtocolConstants.DevelopmentSecret)).Protect(id);
        var cookies = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Baton.Gateway.Sessions.SessionCookie>(app.Services);
        Assert.Equal(Baton.Gateway.Sessions.CookieVerdict.Valid, cookies.Unprotect(documented, out var read));
        Assert.Equal(id, read);
        await app.StopAsync();
    }

    private static async Task<Exception?> StartupErrorAsync(string[] args)
    {
        try
        {
            await using var app = TestGateway.CreateApp(["--urls=http://127.0.0.1:0", .. args]);
            await app.StartAsync();
            await app.StopAsync();
            return null;
        }
        catch (Exception ex) when (ex is InvalidOperationException or Microsoft.Extensions.Options.OptionsValidationException)
        {
            return ex;
        }
    }

    // Everything an operator would read: the exception and its causes.
    private static string Describe(Exception error) => error.ToString();
}
