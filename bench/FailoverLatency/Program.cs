using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;

// Measures what a backend kill costs the requests it catches, against a running stack (./demo.sh):
//   dotnet run -c Release --project bench/FailoverLatency -- [gateway] [sessions] [pid-of-backend-to-kill|auto] [refused|immediately]
// It creates the sessions, measures one read per session as the baseline, kills the backend that holds
// the most sessions with SIGKILL, reads every session again at once (32 at a time) and reports the
// added latency of the requests caught by the kill and the time until every session answered from a
// living backend with its count intact.
// A killed process keeps its sockets until the kernel has torn it down (tens of ms for a .NET process):
// until then connections to it are neither refused nor answered. "refused" (the default) sends the reads
// once its port refuses connections, the connect-refused case; "immediately" sends them right after the
// signal, so the caught requests also wait out the teardown.
var gateway = new Uri(args.ElementAtOrDefault(0) ?? "http://127.0.0.1:8080");
var sessions = int.Parse(args.ElementAtOrDefault(1) ?? "1000", CultureInfo.InvariantCulture);
const int Parallelism = 32;

var clients = Enumerable.Range(0, sessions).Select(_ => new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer() }) { BaseAddress = gateway }).ToArray();
var owners = new string[sessions];
await Parallel.ForAsync(0, sessions, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (i, ct) =>
{
    using var response = await clients[i].PostAsync(new Uri("/counter", UriKind.Relative), null, ct);
    owners[i] = Read(await response.Content.ReadAsStringAsync(ct)).Instance;
});

var baseline = await ReadAllAsync();
var victim = owners.GroupBy(o => o).OrderByDescending(g => g.Count()).First().Key;
var caught = Enumerable.Range(0, sessions).Where(i => owners[i] == victim).ToHashSet();
var port = 5100 + int.Parse(victim[1..], CultureInfo.InvariantCulture);
var pid = args.ElementAtOrDefault(2) is { } given && given != "auto" ? int.Parse(given, CultureInfo.InvariantCulture) : FindPid(port);
var waitForRefusal = (args.ElementAtOrDefault(3) ?? "refused") switch
{
    "refused" => true,
    "immediately" => false,
    var other => throw new ArgumentException($"the fourth argument is 'refused' or 'immediately', not '{other}'"),
};
Console.WriteLine($"{sessions} sessions; killing {victim} (pid {pid}, port {port}) which holds {caught.Count}");

Process.Start("kill", ["-9", pid.ToString(CultureInfo.InvariantCulture)])!.WaitForExit();
var clock = Stopwatch.StartNew();
var refused = WaitForRefusalAsync(port, clock);
if (waitForRefusal)
{
    await refused;
}

var after = await ReadAllAsync();
var allMoved = clock.Elapsed;

var errors = after.Count(a => a.Status != 200 || a.Count != 1);
Report("baseline (before the kill), all sessions", baseline.Select(b => b.Ms));
Report("after the kill, sessions NOT on the killed backend", after.Where((_, i) => !caught.Contains(i)).Select(a => a.Ms));
Report("after the kill, sessions caught by the kill", after.Where((_, i) => caught.Contains(i)).Select(a => a.Ms));
var slowest = after.Where((_, i) => caught.Contains(i)).OrderByDescending(a => a.Ms).Take(5).Select(a => $"{a.Ms:F0} ms (sent at +{a.StartMs:F0} ms)");
Console.WriteLine($"slowest caught requests: {string.Join(", ", slowest)}");
var basePcts = Percentiles(baseline.Select(b => b.Ms));
var caughtPcts = Percentiles(after.Where((_, i) => caught.Contains(i)).Select(a => a.Ms));
Console.WriteLine($"added latency of caught requests: p50 {caughtPcts.P50 - basePcts.P50:F1} ms, p99 {caughtPcts.P99 - basePcts.P99:F1} ms");
Console.WriteLine(waitForRefusal ? "reads sent once the killed backend's port refused connections" : "reads sent right after the kill");
Console.WriteLine($"time from kill until the killed backend's port refused connections: {(await refused).TotalMilliseconds:F0} ms");
Console.WriteLine($"time from kill to every session answered from a living backend: {allMoved.TotalMilliseconds:F0} ms; errors or wrong counts: {errors}");

async Task<(int Status, int Count, double Ms, double StartMs)[]> ReadAllAsync()
{
    var origin = Stopwatch.GetTimestamp();
    var results = new (int, int, double, double)[sessions];
    await Parallel.ForAsync(0, sessions, new ParallelOptions { MaxDegreeOfParallelism = Parallelism }, async (i, ct) =>
    {
        var started = Stopwatch.GetTimestamp();
        using var response = await clients[i].GetAsync(new Uri("/counter", UriKind.Relative), ct);
        var body = await response.Content.ReadAsStringAsync(ct);
        var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        results[i] = ((int)response.StatusCode, response.IsSuccessStatusCode ? Read(body).Count : -1, ms, Stopwatch.GetElapsedTime(origin, started).TotalMilliseconds);
    });
    return results;
}

static async Task<TimeSpan> WaitForRefusalAsync(int port, Stopwatch clock)
{
    while (true)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(IPAddress.Loopback, port);
        }
        catch (System.Net.Sockets.SocketException)
        {
            return clock.Elapsed;
        }

        await Task.Delay(2);
    }
}

static (int Count, string Instance) Read(string json)
{
    using var document = JsonDocument.Parse(json);
    return (document.RootElement.GetProperty("count").GetInt32(), document.RootElement.GetProperty("instance").GetString()!);
}

static (double P50, double P99) Percentiles(IEnumerable<double> values)
{
    var sorted = values.Order().ToArray();
    return (sorted[(int)(sorted.Length * 0.50)], sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * 0.99))]);
}

static void Report(string label, IEnumerable<double> values)
{
    var list = values.ToArray();
    var (p50, p99) = Percentiles(list);
    Console.WriteLine($"{label,-52} n={list.Length,5}  p50 {p50,7:F1} ms  p99 {p99,7:F1} ms  max {list.Max(),7:F1} ms");
}

static int FindPid(int port)
{
    foreach (var dir in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
    {
        try
        {
            var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
            if (cmdline.Contains("Baton.DemoBackend", StringComparison.Ordinal) && cmdline.Contains($"127.0.0.1:{port}", StringComparison.Ordinal))
            {
                return int.Parse(Path.GetFileName(dir), CultureInfo.InvariantCulture);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    throw new InvalidOperationException($"no DemoBackend process listening on port {port}; pass its pid");
}
