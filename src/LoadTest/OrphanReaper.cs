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
    private static readonly Lazy<string> ListPath = new(() =>
    {
        // A folder of this user's own (0700), so nobody else can plant or swap the list.
        var folder = Directory.CreateTempSubdirectory("baton-children-");
        return Path.Combine(folder.FullName, "pids");
    });
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
        var temporary = ListPath.Value + ".new";
        File.WriteAllLines(temporary, Running.Select(id => id.ToString(CultureInfo.InvariantCulture)));
        File.Move(temporary, ListPath.Value, overwrite: true);
    }

    private static bool StartWatcher()
    {
        try
        {
            using var watcher = Watch(Environment.ProcessId, ListPath.Value);
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
        // The host id and the list come in as arguments, never as script text; only lines of digits are killed.
        const string Script = """
            while kill -0 "$1" 2>/dev/null; do sleep 1; done
            if [ -f "$2" ]; then
                for id in $(grep -E '^[0-9]+$' "$2"); do kill -9 "$id" 2>/dev/null; done
            fi
            rm -rf "$(dirname "$2")"
            """;
        return Process.Start(new ProcessStartInfo("/bin/sh", ["-c", Script, "reaper", hostId.ToString(CultureInfo.InvariantCulture), listPath]) { UseShellExecute = false })!;
    }
}
