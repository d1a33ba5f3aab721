using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;

namespace Baton.LoadTest;

/// <summary>
/// Everything one mode runs on loopback: a redis-server, the backends and (unless the mode is direct) the
/// gateway with the mode's profile. Faults are injected here: kill -9 of a backend or Redis, and a fresh
/// start on the same port.
/// </summary>
internal sealed class Stack : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly List<ManagedProcess> _processes = [];

    private Stack(ModeProfile profile, Uri target, ManagedProcess redis, IReadOnlyList<ManagedProcess> backends, ManagedProcess? gateway)
    {
        (Profile, Target, Redis, Backends, Gateway) = (profile, target, redis, backends, gateway);
        _processes.Add(redis);
        _processes.AddRange(backends);
        if (gateway is not null)
        {
            _processes.Add(gateway);
        }
    }

    public ModeProfile Profile { get; }

    /// <summary>Where virtual users send their requests: the gateway, or the one backend in direct mode.</summary>
    public Uri Target { get; }

    public ManagedProcess Redis { get; }

    public IReadOnlyList<ManagedProcess> Backends { get; }

    public ManagedProcess? Gateway { get; }

    public IEnumerable<ManagedProcess> Processes => _processes;

    public static async Task<Stack> StartAsync(ModeProfile profile, string folder, CancellationToken cancellationToken)
    {
        var secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
        var logs = Directory.CreateDirectory(Path.Combine(folder, "logs")).FullName;
        var work = Directory.CreateDirectory(Path.Combine(folder, "work")).FullName;
        var baseDirectory = AppContext.BaseDirectory;
        var started = new List<ManagedProcess>();
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
                var backend = new ManagedProcess(name, "backend", port, Path.Combine(logs, $"{name}.log"), () => Dotnet(baseDirectory, "Baton.DemoBackend.dll",
                [
                    "--urls", $"http://127.0.0.1:{port}",
                    "--contentRoot", contentRoot,
                    $"--Demo:InstanceId={name}",
                    $"--Demo:SessionStore={profile.BackendSessionStore}",
                    $"--Demo:Redis={redisConfig}",
                    $"--Baton:Secret={secret}",
                    "--Logging:LogLevel:Default=Warning",
                ]), ct => ManagedProcess.HttpReadyAsync(new Uri($"http://127.0.0.1:{port}/health"), ct));
                started.Add(backend);
                backends.Add(backend);
            }

            await Task.WhenAll(backends.Select(b => b.StartAsync(StartTimeout, cancellationToken)));
            if (!profile.Gateway)
            {
                return new Stack(profile, new Uri($"http://127.0.0.1:{backends[0].Port}/"), redis, backends, null);
            }

            var gatewayPort = ManagedProcess.FreePort();
            var gatewayRoot = Directory.CreateDirectory(Path.Combine(work, "gateway")).FullName;
            File.Copy(profile.File, Path.Combine(gatewayRoot, "appsettings.json"), overwrite: true);
            List<string> args =
            [
                "--contentRoot", gatewayRoot,
                "--urls", $"http://127.0.0.1:{gatewayPort}",
                $"--Baton:Secret={secret}",
                $"--Baton:JournalPath={Path.Combine(gatewayRoot, "journal.db")}",
            ];
            if (profile.UsesRedis)
            {
                args.Add($"--Baton:Redis={redisConfig}");
            }

            for (var i = 0; i < backends.Count; i++)
            {
                args.Add($"--ReverseProxy:Clusters:demo:Destinations:{backends[i].Name}:Address=http://127.0.0.1:{backends[i].Port}/");
            }

            var gateway = new ManagedProcess("gateway", "gateway", gatewayPort, Path.Combine(logs, "gateway.log"), () => Dotnet(baseDirectory, "Baton.Gateway.dll", args),
                ct => ManagedProcess.HttpReadyAsync(new Uri($"http://127.0.0.1:{gatewayPort}/_baton/ready"), ct));
            started.Add(gateway);
            await gateway.StartAsync(StartTimeout, cancellationToken);
            return new Stack(profile, new Uri($"http://127.0.0.1:{gatewayPort}/"), redis, backends, gateway);
        }
        catch
        {
            foreach (var process in started)
            {
                process.Dispose();
            }

            throw;
        }
    }

    public void Dispose()
    {
        foreach (var process in _processes)
        {
            process.Dispose();
        }
    }

    private static ProcessStartInfo Dotnet(string baseDirectory, string dll, IEnumerable<string> args)
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
