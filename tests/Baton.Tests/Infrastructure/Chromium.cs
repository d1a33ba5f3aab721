using System.Diagnostics;

namespace Baton.Tests.Infrastructure;

/// <summary>A real headless Chromium (Debian's <c>chromium</c>): loads a page, runs its scripts, returns the DOM.</summary>
internal static class Chromium
{
    /// <summary>The page's DOM after its scripts ran (Chromium's virtual time lets timers and fetches finish).</summary>
    public static async Task<string> DumpDomAsync(Uri page)
    {
        var executable = new[] { Environment.GetEnvironmentVariable("CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser" }
            .FirstOrDefault(path => !string.IsNullOrEmpty(path) && File.Exists(path))
            ?? throw new InvalidOperationException("Chromium is needed for this test: apt-get install chromium (or set CHROMIUM to its path).");
        var start = new ProcessStartInfo(executable)
        {
            ArgumentList =
            {
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                $"--user-data-dir={TestPaths.NewFolder("chromium")}",
                "--virtual-time-budget=3000",
                "--dump-dom",
                page.ToString(),
            },
        };
        var dom = new System.Text.StringBuilder();
        await Baton.LoadTest.ManagedProcess.RunAsync(start, TimeSpan.FromSeconds(60), line =>
        {
            lock (dom)
            {
                dom.AppendLine(line);
            }
        });

        lock (dom)
        {
            return dom.Length > 0 ? dom.ToString() : throw new InvalidOperationException($"Chromium printed no DOM for {page}.");
        }
    }
}
