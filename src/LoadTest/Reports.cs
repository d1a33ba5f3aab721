using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using HdrHistogram;

namespace Baton.LoadTest;

/// <summary>
/// Writes the comparison's outputs: <c>results.json</c> (one object per mode), <c>report.md</c> (the
/// headline table), <c>report.html</c> (tables and charts, self-contained) and one <c>.hgrm</c> percentile
/// distribution per mode and per phase.
/// </summary>
internal static class Reports
{
    private static readonly string[] Colors = ["#1f77b4", "#d62728", "#2ca02c", "#7f7f7f", "#9467bd"];
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = true };

    /// <param name="schedules">Each result's fault schedule, in the same order.</param>
    public static void Write(string folder, CompareSettings settings, IReadOnlyList<FaultSchedule> schedules, IReadOnlyList<ModeResult> results)
    {
        File.WriteAllText(Path.Combine(folder, "results.json"), JsonSerializer.Serialize(results, Json));
        foreach (var result in results)
        {
            WriteHgrm(Path.Combine(folder, $"{result.Name}.hgrm"), result.Histogram);
            foreach (var (phase, histogram) in result.PhaseHistograms)
            {
                WriteHgrm(Path.Combine(folder, $"{result.Name}-{phase}.hgrm"), histogram);
            }
        }

        var machine = Machine();
        File.WriteAllText(Path.Combine(folder, "report.md"), Markdown(settings, schedules, results, machine));
        File.WriteAllText(Path.Combine(folder, "report.html"), Html(settings, schedules, results, machine));
    }

    /// <summary>The machine the run was on: processor, cores, memory, OS, .NET.</summary>
    public static string Machine()
    {
        var cpu = "unknown CPU";
        try
        {
            cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? cpu;
        }
        catch (IOException)
        {
        }

        var memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / (1024.0 * 1024 * 1024);
        return string.Create(CultureInfo.InvariantCulture, $"{cpu}, {Environment.ProcessorCount} cores, {memory:0} GiB, {RuntimeInformation.OSDescription}, .NET {Environment.Version}");
    }

    /// <summary>The headline table, in Markdown (also the README's).</summary>
    public static string HeadlineTable(IReadOnlyList<ModeResult> results)
    {
        var text = new StringBuilder();
        text.AppendLine("| mode | read-mostly max rps | write-only max rps | run p50 ms | run p99 ms | run p99.9 ms | 5xx (gateway's own) | sessions lost: backend kill / Redis kill | sessions stale | CPU ms / request |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            text.AppendLine(Invariant($"| `{r.Name}` | {r.Capacity.ReadMostlyRps:0} | {r.Capacity.WriteOnlyRps:0} | {r.P50Ms:0.0} | {r.P99Ms:0.0} | {r.P999Ms:0.0} | {r.Errors5xx} ({r.GatewayErrors5xx}) | {LostUnderKills(r)} | {r.SessionsStale} | {Optional(r.Resources.CpuMsPerRequest, "0.00")} |"));
        }

        return text.ToString();
    }

    // A scaled-out mode's kill is a gateway's, not a backend's or Redis's.
    private static string LostUnderKills(ModeResult r)
        => r.SessionsLostUnderGatewayKill is { } gateway ? Invariant($"gateway kill: {gateway}") : Invariant($"{r.SessionsLostUnderBackendKill} / {r.SessionsLostUnderRedisKill}");

    private static string FaultText(FaultResult f, string recovery)
        => Invariant($"{f.Description}{recovery}") + (f.RequestsFailed is { } failed
            ? Invariant($", {failed} requests failed, every session answered again {(f.EverySessionAnsweredSeconds is { } s ? Invariant($"{s:0.##} s") : "never")} after it")
            : string.Empty);

    private static string Markdown(CompareSettings settings, IReadOnlyList<FaultSchedule> schedules, IReadOnlyList<ModeResult> results, string machine)
    {
        var text = new StringBuilder();
        text.AppendLine("# Session strategies compared");
        text.AppendLine();
        text.AppendLine(Invariant($"Machine: {machine}. Run: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {(settings.Quick ? "quick" : "full")}."));
        text.AppendLine();
        text.AppendLine(Describe(settings, schedules, results));
        text.AppendLine();
        text.Append(HeadlineTable(results));
        text.AppendLine();
        var baton = results.FirstOrDefault(r => r.Name == "sticky-checkpoint");
        var shared = results.FirstOrDefault(r => r.Name == "shared-store");
        if (baton is not null && shared is not null)
        {
            text.AppendLine(Invariant($"sticky-checkpoint vs shared-store, same run: read-mostly throughput {Ratio(baton.Capacity.ReadMostlyRps, shared.Capacity.ReadMostlyRps)}, write-only throughput {Ratio(baton.Capacity.WriteOnlyRps, shared.Capacity.WriteOnlyRps)}; read-mostly p99 {baton.Capacity.ReadMostlyP99Ms:0.0} vs {shared.Capacity.ReadMostlyP99Ms:0.0} ms; write-only p99 {baton.Capacity.WriteOnlyP99Ms:0.0} vs {shared.Capacity.WriteOnlyP99Ms:0.0} ms."));
            text.AppendLine();
        }

        text.AppendLine("## Per phase");
        text.AppendLine();
        text.AppendLine("| mode | phase | requests | ok/s | p50 ms | p99 ms | max ms | errors | 5xx | sessions lost | stale |");
        text.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in results)
        {
            foreach (var p in r.Phases)
            {
                text.AppendLine(Invariant($"| `{r.Name}` | {p.Name} | {p.Requests} | {p.Rps:0} | {p.P50Ms:0.0} | {p.P99Ms:0.0} | {p.MaxMs:0.0} | {p.Errors} | {p.Errors5xx} | {p.Lost} | {p.Stale} |"));
            }
        }

        text.AppendLine();
        text.AppendLine("## Faults, errors and resources");
        text.AppendLine();
        foreach (var r in results)
        {
            var faults = string.Join("; ", r.Faults.Select(f => FaultText(f, Invariant($" at {f.AtSeconds:0.#} s, last failed or wrong answer {f.RecoverySeconds:0.##} s later"))));
            var errors = r.ErrorsByOrigin.Count == 0 ? "none" : string.Join(", ", r.ErrorsByOrigin.Select(e => $"{e.Key} ×{e.Value}"));
            text.AppendLine(Invariant($"- `{r.Name}`: {(faults.Length == 0 ? "no faults" : faults)}. Errors: {errors}. CPU s over the run: gateway {Optional(r.Resources.GatewayCpuSeconds, "0.0")}, backends {Optional(r.Resources.BackendsCpuSeconds, "0.0")}, Redis {Optional(r.Resources.RedisCpuSeconds, "0.0")}; peak MB: gateway {Optional(r.Resources.GatewayPeakMb, "0")}, largest backend {Optional(r.Resources.BackendPeakMb, "0")}, Redis {Optional(r.Resources.RedisPeakMb, "0")}."));
        }

        return text.ToString();
    }

    private static string Describe(CompareSettings settings, IReadOnlyList<FaultSchedule> schedules, IReadOnlyList<ModeResult> results)
    {
        static string Events(FaultSchedule schedule) => schedule.Events.Count == 0 ? "no faults" : string.Join(", ", schedule.Events.Select(e => Invariant($"{e.Description} at {e.At.TotalSeconds:0.#} s")));

        // One schedule for every mode reads as before; modes with different ones are named with theirs.
        var distinct = schedules.Select(Events).Distinct(StringComparer.Ordinal).ToList();
        var faults = distinct.Count <= 1
            ? distinct.FirstOrDefault() ?? "no faults"
            : string.Join("; ", distinct.Select(events => string.Join(", ", results.Where((_, i) => Events(schedules[i]) == events).Select(r => r.Name)) + ": " + events));
        return Invariant($"Capacity probes: {settings.CapacityUsers} users as fast as answered, {settings.CapacityDuration.TotalSeconds:0} s read-mostly (10 % writes) then {settings.CapacityDuration.TotalSeconds:0} s write-only. Measured run: {settings.Users} users, open model at {settings.Rate:0} requests/s for {settings.Duration.TotalSeconds:0} s, {settings.WriteFraction:P0} writes, {settings.StateBytes} bytes of state per session; backends: {(settings.Backends == BackendKind.Node ? "the Express demo" : "the ASP.NET Core demo")}; faults: {faults}. Latency counts from each request's intended start.");
    }

    private static string Html(CompareSettings settings, IReadOnlyList<FaultSchedule> schedules, IReadOnlyList<ModeResult> results, string machine)
    {
        var html = new StringBuilder();
        html.AppendLine("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Baton: session strategies compared</title>");
        html.AppendLine("<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}svg{background:#fafafa;border:1px solid #ddd;margin:.5em 0}.legend span{margin-right:1.5em}</style></head><body>");
        html.AppendLine("<h1>Session strategies compared</h1>");
        html.AppendLine(Invariant($"<p>Machine: {Encode(machine)}. Run: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {(settings.Quick ? "quick" : "full")}.</p>"));
        html.AppendLine($"<p>{Encode(Describe(settings, schedules, results))}</p>");
        html.AppendLine("<p class=\"legend\">" + string.Concat(results.Select((r, i) => $"<span style=\"color:{Colors[i % Colors.Length]}\">&#9632; {Encode(r.Name)}</span>")) + "</p>");

        html.AppendLine("<h2>Headline</h2><table><tr><th>mode</th><th>read-mostly max rps</th><th>write-only max rps</th><th>run p50 ms</th><th>run p99 ms</th><th>run p99.9 ms</th><th>5xx (gateway's own)</th><th>sessions lost: backend kill / Redis kill</th><th>stale</th><th>CPU ms / request</th></tr>");
        foreach (var r in results)
        {
            html.AppendLine(Invariant($"<tr><td>{Encode(r.Name)}</td><td>{r.Capacity.ReadMostlyRps:0}</td><td>{r.Capacity.WriteOnlyRps:0}</td><td>{r.P50Ms:0.0}</td><td>{r.P99Ms:0.0}</td><td>{r.P999Ms:0.0}</td><td>{r.Errors5xx} ({r.GatewayErrors5xx})</td><td>{LostUnderKills(r)}</td><td>{r.SessionsStale}</td><td>{Optional(r.Resources.CpuMsPerRequest, "0.00")}</td></tr>"));
        }

        html.AppendLine("</table>");
        html.AppendLine("<h2>p99 latency per second of the measured run</h2>");
        html.AppendLine(LatencyChart(schedules, results));
        html.AppendLine("<h2>Latency percentiles of the measured run (ms, log scale)</h2>");
        html.AppendLine(BarChart(["p50", "p90", "p99", "p99.9", "max"], results.Select(r => (r.Name, new[] { r.P50Ms, r.P90Ms, r.P99Ms, r.P999Ms, r.MaxMs })).ToList(), logScale: true));
        html.AppendLine("<h2>Throughput: capacity probes (successful requests per second)</h2>");
        html.AppendLine(BarChart(["read-mostly", "write-only"], results.Select(r => (r.Name, new[] { r.Capacity.ReadMostlyRps, r.Capacity.WriteOnlyRps })).ToList(), logScale: false));

        html.AppendLine("<h2>Per phase</h2><table><tr><th>mode</th><th>phase</th><th>requests</th><th>ok/s</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>errors</th><th>5xx</th><th>sessions lost</th><th>stale</th></tr>");
        foreach (var r in results)
        {
            foreach (var p in r.Phases)
            {
                html.AppendLine(Invariant($"<tr><td>{Encode(r.Name)}</td><td>{p.Name}</td><td>{p.Requests}</td><td>{p.Rps:0}</td><td>{p.P50Ms:0.0}</td><td>{p.P99Ms:0.0}</td><td>{p.MaxMs:0.0}</td><td>{p.Errors}</td><td>{p.Errors5xx}</td><td>{p.Lost}</td><td>{p.Stale}</td></tr>"));
            }
        }

        html.AppendLine("</table><h2>Errors by origin</h2><ul>");
        foreach (var r in results)
        {
            var errors = r.ErrorsByOrigin.Count == 0 ? "none" : string.Join(", ", r.ErrorsByOrigin.Select(e => $"{e.Key} ×{e.Value}"));
            var faults = string.Join("; ", r.Faults.Select(f => FaultText(f, Invariant($": last failed or wrong answer {f.RecoverySeconds:0.##} s after it"))));
            html.AppendLine($"<li><b>{Encode(r.Name)}</b>: {Encode(errors)}. {Encode(faults)}</li>");
        }

        html.AppendLine("</ul></body></html>");
        return html.ToString();
    }

    private static string LatencyChart(IReadOnlyList<FaultSchedule> schedules, IReadOnlyList<ModeResult> results)
    {
        const int width = 1000, height = 320, left = 60, right = 20, top = 20, bottom = 40;
        var seconds = Math.Max(1, schedules.Count > 0 ? schedules[0].Duration.TotalSeconds : 1);

        // Every mode's faults are marked, each once.
        var events = schedules.SelectMany(s => s.Events).DistinctBy(e => (e.At, e.Description)).OrderBy(e => e.At).ToList();
        var max = Math.Max(1, results.SelectMany(r => r.Timeline).Select(s => s.P99Ms).DefaultIfEmpty(1).Max());
        var logMax = Math.Log10(Math.Max(10, max * 1.2));
        var logMin = -1.0;
        double X(double s) => left + (s / seconds * (width - left - right));
        double Y(double ms) => top + ((1 - ((Math.Log10(Math.Max(0.1, ms)) - logMin) / (logMax - logMin))) * (height - top - bottom));
        var svg = new StringBuilder();
        svg.AppendLine(Invariant($"<svg width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">"));
        for (var decade = (int)logMin; decade <= (int)Math.Ceiling(logMax); decade++)
        {
            var ms = Math.Pow(10, decade);
            if (ms > Math.Pow(10, logMax))
            {
                break;
            }

            svg.AppendLine(Invariant($"<line x1=\"{left}\" x2=\"{width - right}\" y1=\"{Y(ms):0.0}\" y2=\"{Y(ms):0.0}\" stroke=\"#ddd\"/><text x=\"{left - 5}\" y=\"{Y(ms) + 4:0.0}\" text-anchor=\"end\">{ms:0.#} ms</text>"));
        }

        for (var f = 0; f < events.Count; f++)
        {
            // Labels alternate between two lines so that close faults stay readable.
            var fault = events[f];
            var x = X(fault.At.TotalSeconds);
            svg.AppendLine(Invariant($"<line x1=\"{x:0.0}\" x2=\"{x:0.0}\" y1=\"{top}\" y2=\"{height - bottom}\" stroke=\"#e67e22\" stroke-dasharray=\"4 3\"/><text x=\"{x + 3:0.0}\" y=\"{top + 10 + (f % 2 * 13)}\" fill=\"#e67e22\">{Encode(fault.Description)}</text>"));
        }

        for (var i = 0; i < results.Count; i++)
        {
            var points = string.Join(' ', results[i].Timeline.Where(s => s.Requests > 0).Select(s => Invariant($"{X(s.Second + 0.5):0.0},{Y(s.P99Ms):0.0}")));
            svg.AppendLine($"<polyline fill=\"none\" stroke=\"{Colors[i % Colors.Length]}\" stroke-width=\"1.5\" points=\"{points}\"><title>{Encode(results[i].Name)}</title></polyline>");
        }

        for (var s = 0; s <= seconds; s += Math.Max(1, (int)(seconds / 10)))
        {
            svg.AppendLine(Invariant($"<text x=\"{X(s):0.0}\" y=\"{height - bottom + 15}\" text-anchor=\"middle\">{s} s</text>"));
        }

        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    private static string BarChart(string[] groups, List<(string Name, double[] Values)> series, bool logScale)
    {
        const int width = 1000, height = 300, left = 60, top = 20, bottom = 40;
        var max = Math.Max(1, series.SelectMany(s => s.Values).DefaultIfEmpty(1).Max()) * 1.15;
        var logMin = -1.0;
        var logMax = Math.Log10(Math.Max(10, max));
        double Height(double v) => logScale
            ? Math.Max(0, (Math.Log10(Math.Max(0.1, v)) - logMin) / (logMax - logMin)) * (height - top - bottom)
            : v / max * (height - top - bottom);
        var groupWidth = (width - left - 20) / (double)groups.Length;
        var barWidth = groupWidth * 0.8 / Math.Max(1, series.Count);
        var svg = new StringBuilder();
        svg.AppendLine(Invariant($"<svg width=\"{width}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\" font-size=\"11\">"));
        for (var g = 0; g < groups.Length; g++)
        {
            var x0 = left + (g * groupWidth) + (groupWidth * 0.1);
            svg.AppendLine(Invariant($"<text x=\"{x0 + (groupWidth * 0.4):0.0}\" y=\"{height - bottom + 15}\" text-anchor=\"middle\">{Encode(groups[g])}</text>"));
            for (var s = 0; s < series.Count; s++)
            {
                var value = series[s].Values[g];
                var h = Height(value);
                var x = x0 + (s * barWidth);
                var y = height - bottom - h;
                svg.AppendLine(Invariant($"<rect x=\"{x:0.0}\" y=\"{y:0.0}\" width=\"{barWidth * 0.9:0.0}\" height=\"{h:0.0}\" fill=\"{Colors[s % Colors.Length]}\"><title>{Encode(series[s].Name)}: {value:0.##}</title></rect><text x=\"{x + (barWidth * 0.45):0.0}\" y=\"{y - 3:0.0}\" text-anchor=\"middle\">{value:0.#}</text>"));
            }
        }

        svg.AppendLine(Invariant($"<line x1=\"{left}\" x2=\"{width - 20}\" y1=\"{height - bottom}\" y2=\"{height - bottom}\" stroke=\"#999\"/>"));
        svg.AppendLine("</svg>");
        return svg.ToString();
    }

    private static void WriteHgrm(string path, LongHistogram? histogram)
    {
        if (histogram is null || histogram.TotalCount == 0)
        {
            return;
        }

        using var writer = new StreamWriter(path);

        // Recorded in microseconds; written in milliseconds.
        histogram.OutputPercentileDistribution(writer, outputValueUnitScalingRatio: 1000.0);
    }

    private static string Ratio(double a, double b) => b <= 0 ? "n/a" : Invariant($"{a / b:0.00}×");

    private static string Optional(double? value, string format) => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) : "n/a";

    private static string Encode(string text) => WebUtility.HtmlEncode(text);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
