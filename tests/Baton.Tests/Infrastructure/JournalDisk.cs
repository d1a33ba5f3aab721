namespace Baton.Tests.Infrastructure;

/// <summary>A journal disk that fails: an immutable file refuses every write, root's included (needs root, as CI runs).</summary>
internal static class JournalDisk
{
    public static void Chattr(string change, string path)
    {
        using var chattr = System.Diagnostics.Process.Start("chattr", [change, path]);
        chattr.WaitForExit();
        Assert.Equal(0, chattr.ExitCode);
    }
}
