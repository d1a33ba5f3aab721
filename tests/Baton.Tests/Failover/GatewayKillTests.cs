using System.Diagnostics;
using System.Text.Json;
using Baton.LoadTest;
using Baton.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Baton.Tests.Failover;

/// <summary>
/// Several gateways behind a real HAProxy (TCP mode, health-checked on readiness) on one shared PostgreSQL journal
/// and one redis-server, three backends behind them: a gateway killed -9 under load costs only the requests in
/// flight on it, and a gateway started on an empty disk serves every session. Each client counts on its own
/// kept-alive connection and knows what its counter must say.
/// </summary>
[Collection(nameof(RunsAlone))]
[Trait("Category", "Functional")]
public sealed class GatewayKillTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Clients = 12;
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private readonly RedisServer _redis = new();
    private readonly List<BackendProcess> _backends = [];
    private readonly List<GatewayProcess> _gateways = [];
    private readonly List<KeepAliveClient> _clients = [];
    private TestJournal? _journal;
    private HaProxy? _balancer;

    private HaProxy Balancer => _balancer!;

    public async Task InitializeAsync()
    {
        await _redis.InitializeAsync();
        _journal = await TestJournal.StartAsync(JournalKind.PostgreSql);
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        _balancer?.Dispose();
        foreach (var gateway in _gateways)
        {
            gateway.Stop();
        }

        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        if (_journal is not null)
        {
            await _journal.DisposeAsync();
        }

        await _redis.DisposeAsync();
    }

    [Theory]
    [MemberData(nameof(BackendKinds.All), MemberType = typeof(BackendKinds))]
    public async Task KillingOneOfTwoGatewaysUnderLoad_LosesNoSession_AndFailsOnlyTheRequestsInFlightOnIt(BackendKind kind)
    {
        await StartAsync(running: 2, listed: 2, kind);
        var killed = _gateways[0];
        var runs = Enumerable.Range(0, Clients).Select(_ => new CountingClient(NewClient(Balancer.Address))).ToList();
        using var stop = new CancellationTokenSource();
        var load = runs.Select(run => run.RunAsync(stop.Token)).ToList();
        try
        {
            await Eventually.TrueAsync(
                async () => runs.All(r => r.Answers >= 20) && (await Balancer.ServersAsync(CancellationToken.None)).Values.All(s => s.Connections > 0),
                Deadline,
                "every client should be answered, through both gateways");

            var atKill = (await Balancer.ServersAsync(CancellationToken.None))["g1"];
            foreach (var run in runs)
            {
                run.MarkKill();
            }

            await killed.KillAsync();
            await Eventually.TrueAsync(async () => (await Balancer.ServersAsync(CancellationToken.None))["g1"].Status.StartsWith("DOWN", StringComparison.Ordinal), Deadline, "the balancer should take the killed gateway out");

            // The connections the killed gateway had: those open at the kill, and those the balancer still gave it while
            // the kernel tore the process down (accepted by its listening socket, then reset) before it was marked down.
            var madeSince = (await Balancer.ServersAsync(CancellationToken.None))["g1"].TotalConnections - atKill.TotalConnections;
            var openToKilled = atKill.Connections + madeSince;
            var answeredAtKill = runs.Select(r => r.Answers).ToList();
            await Eventually.TrueAsync(() => runs.Select((r, i) => r.Answers >= answeredAtKill[i] + 20).All(answered => answered), Deadline, "every client should be answered again after the kill");
            await Eventually.TrueAsync(async () => (await Balancer.ServersAsync(CancellationToken.None))["g2"].Connections == Clients, Deadline, "every client should be on the surviving gateway");

            await stop.CancelAsync();
            await Task.WhenAll(load);
            var failed = runs.Sum(r => r.NoAnswer);
            output.WriteLine($"{atKill.Connections} connections open to the killed gateway and {madeSince} made to it while it died, {failed} requests without an answer, {runs.Sum(r => r.Answers)} answered, {runs.Sum(r => r.AppliedUnanswered)} of the unanswered changes made; reconnections: {runs.Sum(r => r.Reconnections)}");
            Assert.Empty(runs.SelectMany(r => r.Wrong));
            Assert.Empty(runs.SelectMany(r => r.ErrorAnswers));
            Assert.Equal(0, runs.Sum(r => r.NoAnswerBeforeKill));
            Assert.True(failed <= openToKilled, $"{failed} requests failed; the killed gateway had {openToKilled} connections ({atKill.Connections} open at the kill, {madeSince} made while it died)");
            Assert.True(runs.Count(r => r.NoAnswer > 0) <= atKill.Connections, "only clients connected to the killed gateway at the kill may have lost a request");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAll(load);
        }
    }

    [Fact]
    public async Task AThirdGatewayStartedOnAnEmptyDisk_JoinsTheBalancer_AndServesEverySessionWithItsState()
    {
        await StartAsync(running: 2, listed: 3, BackendKind.Dotnet);
        var clients = Enumerable.Range(0, Clients).Select(_ => NewClient(Balancer.Address)).ToList();
        await Task.WhenAll(clients.Select(async client =>
        {
            for (var n = 1; n <= 3; n++)
            {
                Assert.Equal(n, await PostCounterAsync(client));
            }
        }));

        var joining = _gateways[2];
        Assert.False(File.Exists(joining.JournalPath));
        await joining.StartAsync();
        await Eventually.TrueAsync(async () => (await Balancer.ServersAsync(CancellationToken.None))["g3"].IsUp, Deadline, "the balancer should take the new gateway in");

        // Straight to the new gateway: every session as it was, and it carries on there.
        foreach (var client in clients)
        {
            var direct = NewClient(joining.Address, client.Cookie);
            Assert.Equal(3, await CountAsync(direct, "GET"));
            Assert.Equal(4, await PostCounterAsync(direct));
        }

        // Through the balancer on new connections, spread over all three: each continues from there.
        var totalBefore = (await Balancer.ServersAsync(CancellationToken.None))["g3"].TotalConnections;
        foreach (var client in clients)
        {
            var again = NewClient(Balancer.Address, client.Cookie);
            Assert.Equal(5, await PostCounterAsync(again));
            again.Dispose();
        }

        Assert.True((await Balancer.ServersAsync(CancellationToken.None))["g3"].TotalConnections > totalBefore, "the balancer should send new connections to the new gateway");
    }

    // Three backends of the kind, three gateways (g1..g3) over them, the first `running` started, the first `listed`
    // behind the balancer.
    private async Task StartAsync(int running, int listed, BackendKind kind)
    {
        _backends.AddRange(await Task.WhenAll(Enumerable.Range(1, 3).Select(i => BackendProcess.StartAsync($"b{i}", kind: kind))));
        for (var i = 0; i < 3; i++)
        {
            _gateways.Add(new GatewayProcess([.. _backends.Select(b => b.Address)], [$"--Baton:Store:Redis={_redis.Configuration}", .. _journal!.GatewayArgs]));
        }

        await Task.WhenAll(_gateways.Take(running).Select(g => g.StartAsync()));
        _balancer = await HaProxy.StartAsync([.. _gateways.Take(listed).Select((g, i) => ($"g{i + 1}", g.Port))], Path.Combine(TestPaths.NewFolder("logs"), "haproxy.log"), Deadline, CancellationToken.None);
        await Eventually.TrueAsync(
            async () => (await Balancer.ServersAsync(CancellationToken.None)).Where(s => s.Key is "g1" or "g2").All(s => s.Value.IsUp),
            Deadline,
            "the balancer should see both gateways ready");
    }

    private KeepAliveClient NewClient(Uri server, string? cookie = null)
    {
        var client = new KeepAliveClient(server) { Cookie = cookie };
        _clients.Add(client);
        return client;
    }

    private static Task<int> PostCounterAsync(KeepAliveClient client) => CountAsync(client, "POST");

    private static async Task<int> CountAsync(KeepAliveClient client, string method)
    {
        var answer = await client.SendAsync(method, "/counter", RequestTimeout);
        Assert.NotNull(answer);
        Assert.True(answer.Value.Status == 200, $"{method} /counter answered {answer.Value.Status}: {answer.Value.Body}");
        return CountingClient.CountOf(answer.Value.Body);
    }

    /// <summary>
    /// One client incrementing its counter as fast as it is answered. It knows the count it last saw; a request that got
    /// no answer may or may not have been made, so the next answer may hold it or not, but never less, and never a
    /// counter started over.
    /// </summary>
    private sealed class CountingClient(KeepAliveClient client)
    {
        public int Reconnections => client.Connections - 1;

        private readonly List<string> _wrong = [];
        private readonly List<string> _errors = [];
        private volatile bool _killed;
        private int _answers;

        public int Answers => Volatile.Read(ref _answers);

        public int NoAnswer { get; private set; }

        /// <summary>Changes whose request got no answer but which the next answer holds.</summary>
        public int AppliedUnanswered { get; private set; }

        public int NoAnswerBeforeKill { get; private set; }

        public IReadOnlyList<string> Wrong => _wrong;

        public IReadOnlyList<string> ErrorAnswers => _errors;

        /// <summary>Requests that fail from now on may be the kill's.</summary>
        public void MarkKill() => _killed = true;

        public static int CountOf(string body)
        {
            using var document = JsonDocument.Parse(body);
            return document.RootElement.GetProperty("count").GetInt32();
        }

        public async Task RunAsync(CancellationToken stop)
        {
            var (seen, unconfirmed) = (0, 0);
            while (!stop.IsCancellationRequested)
            {
                var started = Stopwatch.GetTimestamp();
                var answer = await client.SendAsync("POST", "/counter", RequestTimeout);
                if (answer is null)
                {
                    NoAnswer++;
                    NoAnswerBeforeKill += _killed ? 0 : 1;
                    unconfirmed++;
                    continue;
                }

                if (answer.Value.Status != 200)
                {
                    _errors.Add($"{answer.Value.Status} after {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0} ms: {answer.Value.Body}");
                    unconfirmed++;
                    continue;
                }

                var count = CountOf(answer.Value.Body);
                if (count < seen + 1 || count > seen + 1 + unconfirmed)
                {
                    _wrong.Add($"count {count} after {seen} with {unconfirmed} unconfirmed: {answer.Value.Body}");
                }
                else
                {
                    AppliedUnanswered += count - seen - 1;
                }

                (seen, unconfirmed) = (count, 0);
                Interlocked.Increment(ref _answers);
            }
        }
    }
}
