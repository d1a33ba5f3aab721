using System.Diagnostics;
using System.Globalization;

namespace Baton.LoadTest;

/// <summary>
/// Kills the server processes of a host that died without cleaning up (kill -9, a hang guard, an OOM kill),
/// which no exit handler of its own can do. The host keeps the ids of its running children in a file; a small
/// shell process started once per host waits for the host to be gone, then kills every id the file still lists.
/// </summary>
internal static class OrphanReaper
{
    private static readonly HashSet<int> Running = [];
    private static readonly string ListPath = Path.Combine(Path.GetTempPath(), $"baton-children-{Environment.ProcessId}");
    private static bool _watching;

    /// <summary>Lists a child that has just started; starts the watcher at the first.</summary>
    public static void Started(int processId)
    {
        lock (Running)
        {
            Running.Add(processId);
            Write();
            if (!_watching)
            {
                _watching = StartWatcher();
            }
        }
    }

    /// <summary>Forgets a child that was killed or has ended.</summary>
    public static void Ended(int processId)
    {
        lock (Running)
        {
            if (Running.Remove(processId))
            {
                Write();
            }
        }
    }

    private static void Write()
    {
        var temporary = ListPath + ".new";
        File.WriteAllLines(temporary, Running.Select(id => id.ToString(CultureInfo.InvariantCulture)));
        File.Move(temporary, ListPath, overwrite: true);
    }

    private static bool StartWatcher()
    {
        try
        {
            using var watcher = Watch(Environment.ProcessId, ListPath);
            return true;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No shell here: children are still killed by the host's own exit handler.
            return false;
        }
    }

    /// <summary>
    /// Starts the watcher of <paramref name="hostId"/>: once that process is gone, it kills every process id
    /// <paramref name="listPath"/> lists (one per line) and deletes the file. Polls once a second (a sleep, no
    /// CPU), so a dead host's children outlive it by about a second.
    /// </summary>
    internal static Process Watch(int hostId, string listPath)
    {
        var script = $"""
            while kill -0 {hostId} 2>/dev/null; do sleep 1; done
            [ -f '{listPath}' ] && kill -9 $(cat '{listPath}') 2>/dev/null
            rm -f '{listPath}'
            """;
        return Process.Start(new ProcessStartInfo("/bin/sh", ["-c", script]) { UseShellExecute = false })!;
    }
}
