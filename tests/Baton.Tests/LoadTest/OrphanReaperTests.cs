using System.Diagnostics;
using System.Globalization;
using Baton.LoadTest;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.LoadTest;

/// <summary>A host killed -9 leaves no server behind: its watcher kills the children it listed.</summary>
[Trait("Category", "Functional")]
public sealed class OrphanReaperTests
{
    [Fact]
    public async Task AHostKilled9_HasTheChildrenItListedKilled_AndTheListRemoved()
    {
        var list = Path.Combine(TestPaths.NewFolder("reaper"), "children");
        using var host = Process.Start("sleep", ["300"]);
        using var child = Process.Start("sleep", ["300"]);
        using var bystander = Process.Start("sleep", ["300"]);
        try
        {
            // Only lines of digits are ids: anything else in the list is never passed to kill.
            await File.WriteAllTextAsync(list, $"-1\n{bystander.Id} x\n{child.Id.ToString(CultureInfo.InvariantCulture)}\n");
            using var watcher = OrphanReaper.Watch(host.Id, list);
            Assert.False(watcher.HasExited || child.HasExited, "while the host lives, its watcher waits");

            host.Kill();

            await Eventually.TrueAsync(() => child.HasExited, TimeSpan.FromSeconds(10), "the listed child should be killed once its host is gone");
            await Eventually.TrueAsync(() => !Directory.Exists(Path.GetDirectoryName(list)), TimeSpan.FromSeconds(10), "the list and its folder should be removed");
            Assert.False(bystander.HasExited, "a process the host did not list is left alone");
            await watcher.WaitForExitAsync();
        }
        finally
        {
            foreach (var process in new[] { host, child, bystander })
            {
                if (!process.HasExited)
                {
                    process.Kill();
                }
            }
        }
    }
}
