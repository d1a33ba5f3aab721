using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace Baton.LoadTest;

/// <summary>
/// Everything one mode runs on loopback: a redis-server, the backends and (unless the mode is direct) the
/// gateway with the mode's profile; a scaled-out mode runs several gateways on a PostgreSQL journal they share,
/// behind HAProxy. Faults are injected here: kill -9 of a backend, Redis or a gateway, and a fresh start on the
/// same port.
/// </summary>
internal sealed class Stack : IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly List<ManagedProcess> _processes = [];

    private Stack(ModeProfile profile, Uri target, ManagedProcess redis, IReadOnlyList<ManagedProcess> backends, IReadOnlyList<ManagedProcess> gateways, HaProxy? balancer, PostgresJournal? journal)
    {
        (Profile, Target, Redis, Backends, Gateways, Balancer, Journal) = (profile, target, redis, backends, gateways, balancer, journal);
        _processes.Add(redis);
        _processes.AddRange(backends);
        _processes.AddRange(gateways);
        if (balancer is not null)
        {
            _processes.Add(balancer.Process);
        }

        if (journal is not null)
        {
            _processes.Add(journal.Process);
        }
    }

    public ModeProfile Profile { get; }

    /// <summary>Where virtual users send their requests: the gateway (the balancer when scaled out), or the one backend in direct mode.</summary>
    public Uri Target { get; }

    public ManagedProcess Redis { get; }

    public IReadOnlyList<ManagedProcess> Backends { get; }

    public ManagedProcess? Gateway => Gateways.Count > 0 ? Gateways[0] : null;

    /// <summary>Every gateway: one, or (scaled out) g1, g2... behind <see cref="Balancer"/>.</summary>
    public IReadOnlyList<ManagedProcess> Gateways { get; }

    public HaProxy? Balancer { get; }

    /// <summary>The shared journal's server, when the gateways use one.</summary>
    public PostgresJournal? Journal { get; }

    public IEnumerable<ManagedProcess> Processes => _processes;

    public static async Task<Stack> StartAsync(ModeProfile profile, BackendKind backendKind, string folder, CancellationToken cancellationToken)
    {
        var secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
        var logs = Directory.CreateDirectory(Path.Combine(folder, "logs")).FullName;
        var work = Directory.CreateDirectory(Path.Combine(folder, "work")).FullName;
        var baseDirectory = AppContext.BaseDirectory;
        var started = new List<ManagedProcess>();
        HaProxy? balancer = null;
        PostgresJournal? journal = null;
        try
        {
            var redisPort = ManagedProcess.FreePort();
            var redisConfig = $"127.0.0.1:{redisPort}";
            var redis = new ManagedProcess("redis", "redis", redisPort, Path.Combine(logs, "redis.log"), () => new ProcessStartInfo("redis-server")
            {
                ArgumentList = { "--port", Invariant(redisPort), "--bind", "127.0.0.1", "--save", string.Empty, "--appendonly", "no", "--dir", work },
            }, ct => ManagedProcess.AcceptsAsync(redisPort, ct));
            started.Add(redis);
            await redis.StartAsync(StartTimeout, cancellationToken);

            var backends = new List<ManagedProcess>();
            for (var i = 1; i <= profile.Backends; i++)
            {
                var name = $"b{i}";
                var port = ManagedProcess.FreePort();
                var contentRoot = Directory.CreateDirectory(Path.Combine(work, name)).FullName;
                List<string> settings = [$"--Demo:SessionStore={profile.BackendSessionStore}"];
                if (profile.BackendSessionStore == "Redis")
                {
                    settings.Add($"--Demo:Redis={redisConfig}");
                }

                var backend = new ManagedProcess(name, "backend", port, Path.Combine(logs, $"{name}.log"), () => DemoBackendCommand.Create(backendKind, baseDirectory, port, name, secret, contentRoot, settings),
                    ct => ManagedProcess.HttpReadyAsync(new Uri($"http://127.0.0.1:{port}/health"), ct));
                started.Add(backend);
                backends.Add(backend);
            }

            await Task.WhenAll(backends.Select(b => b.StartAsync(StartTimeout, cancellationToken)));
            if (!profile.Gateway)
            {
                return new Stack(profile, new Uri($"http://127.0.0.1:{backends[0].Port}/"), redis, backends, [], null, null);
            }

            if (profile.Journal == "PostgreSql")
            {
                journal = await PostgresJournal.StartAsync(Path.Combine(logs, "postgres.log"), StartTimeout, cancellationToken);
            }

            // One gateway keeps the names it always had; several are g1, g2... each with a folder and a log of its own.
            var gateways = new List<ManagedProcess>();
            for (var i = 1; i <= profile.Gateways; i++)
            {
                var name = profile.ScaledOut ? $"g{i}" : "gateway";
                var gateway = NewGateway(profile, name, Directory.CreateDirectory(Path.Combine(work, profile.ScaledOut ? $"gateway-{name}" : "gateway")).FullName, logs, secret, redisConfig, journal, backends);
                started.Add(gateway);
                gateways.Add(gateway);
            }

            await Task.WhenAll(gateways.Select(g => g.StartAsync(StartTimeout, cancellationToken)));
            if (!profile.ScaledOut)
            {
                return new Stack(profile, new Uri($"http://127.0.0.1:{gateways[0].Port}/"), redis, backends, gateways, null, journal);
            }

            balancer = await HaProxy.StartAsync([.. gateways.Select(g => (g.Name, g.Port))], Path.Combine(logs, "haproxy.log"), StartTimeout, cancellationToken);
            await WaitUntilBalancedAsync(balancer, gateways.Count, cancellationToken);
            return new Stack(profile, balancer.Address, redis, backends, gateways, balancer, journal);
        }
        catch
        {
            balancer?.Dispose();
            foreach (var process in started)
            {
                process.Dispose();
            }

            if (journal is not null)
            {
                await journal.DisposeAsync();
            }

            throw;
        }
    }

    /// <summary>Waits until the balancer sends connections to every gateway it lists (its checks passed), at most a minute.</summary>
    public static async Task WaitUntilBalancedAsync(HaProxy balancer, int gateways, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(StartTimeout);
        try
        {
            while ((await balancer.ServersAsync(deadline.Token)).Values.Count(s => s.IsUp) < gateways)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), deadline.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"HAProxy did not see all {gateways} gateways ready within {StartTimeout.TotalSeconds:0} s; see its log.");
        }
    }

    public async ValueTask DisposeAsync()
    {
        Balancer?.Dispose();
        foreach (var process in _processes)
        {
            process.Dispose();
        }

        if (Journal is not null)
        {
            await Journal.DisposeAsync();
        }
    }

    private static ManagedProcess NewGateway(ModeProfile profile, string name, string root, string logs, string secret, string redisConfig, PostgresJournal? journal, List<ManagedProcess> backends)
    {
        var port = ManagedProcess.FreePort();
        File.Copy(profile.File, Path.Combine(root, "appsettings.json"), overwrite: true);
        List<string> args =
        [
            "--contentRoot", root,
            "--urls", $"http://127.0.0.1:{port}",
            $"--Baton:Secret={secret}",
            $"--Baton:JournalPath={Path.Combine(root, "journal.db")}",
        ];
        if (profile.UsesRedis)
        {
            args.Add($"--Baton:Redis={redisConfig}");
        }

        if (journal is not null)
        {
            args.Add("--Baton:Journal:Provider=PostgreSql");
            args.Add($"--Baton:Journal:ConnectionString={journal.ConnectionString}");
        }

        foreach (var backend in backends)
        {
            args.Add($"--ReverseProxy:Clusters:demo:Destinations:{backend.Name}:Address=http://127.0.0.1:{backend.Port}/");
        }

        return new ManagedProcess(name, "gateway", port, Path.Combine(logs, $"{(profile.ScaledOut ? "gateway-" + name : "gateway")}.log"), () => Dotnet(AppContext.BaseDirectory, "Baton.Gateway.dll", args),
            ct => ManagedProcess.HttpReadyAsync(new Uri($"http://127.0.0.1:{port}/_baton/ready"), ct));
    }

    /// <summary>One of this build's programs, run with <c>dotnet</c> in the Production environment.</summary>
    public static ProcessStartInfo Dotnet(string baseDirectory, string dll, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = baseDirectory };
        start.ArgumentList.Add(Path.Combine(baseDirectory, dll));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        return start;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
