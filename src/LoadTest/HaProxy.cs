using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Baton.LoadTest;

/// <summary>
/// HAProxy in TCP mode in front of several gateways on loopback, the L4 balancer of a scale-out: round-robin over
/// the gateways that pass their readiness check (<c>/_baton/ready</c> every 250 ms, out after two failures, back
/// after two passes), and a connection the chosen gateway refuses is tried on another. A server may be listed
/// before its gateway runs: it stays down until it answers. Its config and admin socket live in a temporary folder
/// of their own; killed (and the folder removed) when disposed.
/// </summary>
internal sealed class HaProxy : IDisposable
{
    /// <summary>The name of HAProxy's backend section holding the gateways.</summary>
    public const string Pool = "gateways";

    private readonly string _folder;
    private readonly string _socketPath;

    private HaProxy(ManagedProcess process, string folder, string socketPath)
        => (Process, _folder, _socketPath) = (process, folder, socketPath);

    public ManagedProcess Process { get; }

    public int Port => Process.Port;

    /// <summary>Where clients connect: the balancer's frontend.</summary>
    public Uri Address => new($"http://127.0.0.1:{Port}/");

    /// <summary>
    /// Writes the config and starts <c>haproxy -db</c> (foreground) for these gateways (name and loopback port
    /// each); ready when the frontend accepts connections.
    /// </summary>
    public static async Task<HaProxy> StartAsync(IReadOnlyList<(string Name, int Port)> gateways, string logPath, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var folder = Directory.CreateTempSubdirectory("baton-haproxy-").FullName;
        var socketPath = Path.Combine(folder, "admin.sock");
        var configPath = Path.Combine(folder, "haproxy.cfg");
        var port = ManagedProcess.FreePort();
        await File.WriteAllTextAsync(configPath, Config(port, gateways, socketPath), cancellationToken);
        var process = new ManagedProcess("haproxy", "balancer", port, logPath, () => new ProcessStartInfo(Program(), ["-f", configPath, "-db"]),
            ct => ManagedProcess.AcceptsAsync(port, ct));
        var haProxy = new HaProxy(process, folder, socketPath);
        try
        {
            await process.StartAsync(timeout, cancellationToken);
            return haProxy;
        }
        catch
        {
            haProxy.Dispose();
            throw;
        }
    }

    /// <summary>The haproxy program: from PATH, else from /usr/sbin, where Debian's package puts it (off a user's PATH).</summary>
    public static string Program()
        => (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/sbin")
            .Select(folder => Path.Combine(folder, "haproxy"))
            .FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("haproxy is not on PATH nor in /usr/sbin: install the haproxy package (apt-get install haproxy).");

    /// <summary>The configuration: one TCP frontend on the loopback port, the gateways as health-checked servers.</summary>
    public static string Config(int port, IReadOnlyList<(string Name, int Port)> gateways, string adminSocket)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"""
            global
                nbthread 1
                maxconn 4096
                stats socket {adminSocket} mode 600 level admin

            defaults
                mode tcp
                # A client is the gateway's to time out; these only bound a connection nobody uses.
                timeout connect 1s
                timeout client 5m
                timeout server 5m
                timeout client-fin 5s
                timeout server-fin 5s
                timeout check 1s
                # A connection a gateway refuses (dead, not yet marked down) is tried again on another one.
                retries 3
                option redispatch 1

            frontend edge
                bind 127.0.0.1:{port}
                default_backend {Pool}

            backend {Pool}
                balance roundrobin
                option httpchk GET /_baton/ready
                http-check expect status 200
                default-server inter 250ms fastinter 250ms downinter 250ms fall 2 rise 2
            """);
        foreach (var (name, gatewayPort) in gateways)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"    server {name} 127.0.0.1:{gatewayPort} check");
        }

        return text.ToString();
    }

    /// <summary>Each gateway's state as HAProxy sees it, from <c>show stat</c> on the admin socket.</summary>
    public async Task<IReadOnlyDictionary<string, BalancedServer>> ServersAsync(CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(_socketPath), cancellationToken);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        await stream.WriteAsync("show stat\n"u8.ToArray(), cancellationToken);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        var lines = (await reader.ReadToEndAsync(cancellationToken)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var header = lines[0].TrimStart('#', ' ').Split(',');
        int Column(string name) => Array.IndexOf(header, name);
        var (proxy, server, current, total, status) = (Column("pxname"), Column("svname"), Column("scur"), Column("stot"), Column("status"));
        var servers = new Dictionary<string, BalancedServer>(StringComparer.Ordinal);
        foreach (var fields in lines.Skip(1).Select(line => line.Split(',')))
        {
            if (fields.Length > status && fields[proxy] == Pool && fields[server] is not ("FRONTEND" or "BACKEND"))
            {
                servers[fields[server]] = new BalancedServer(
                    fields[status],
                    int.Parse(fields[current], CultureInfo.InvariantCulture),
                    long.Parse(fields[total], CultureInfo.InvariantCulture));
            }
        }

        return servers;
    }

    public void Dispose()
    {
        Process.Dispose();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // Already gone.
        }
    }
}

/// <summary>One gateway behind the balancer: its check state (<c>UP</c>, <c>DOWN</c>, <c>UP 1/2</c>...), connections open to it now, connections ever.</summary>
internal sealed record BalancedServer(string Status, int Connections, long TotalConnections)
{
    public bool IsUp => Status == "UP";
}
