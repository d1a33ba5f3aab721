namespace Baton.Tests.Infrastructure;

/// <summary>Temporary folders that are removed when the test run's process exits.</summary>
internal static class TestPaths
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), "baton-tests-" + Environment.ProcessId);

    static TestPaths()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(Root, recursive: true);
            }
            catch (IOException)
            {
            }
        };
    }

    /// <summary>The repository's root folder (where Baton.slnx is), found from the test binaries' folder.</summary>
    public static string RepositoryRoot
    {
        get
        {
            for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
            {
                if (File.Exists(Path.Combine(folder.FullName, "Baton.slnx")))
                {
                    return folder.FullName;
                }
            }

            throw new InvalidOperationException("The repository root (with Baton.slnx) is not above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>A new empty folder, for a content root that must not pick up any appsettings.json.</summary>
    public static string NewFolder(string name)
    {
        var path = Path.Combine(Root, name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(path);
        return path;
    }
}
