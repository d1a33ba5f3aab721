using System.Diagnostics;

namespace Baton.LoadTest;

/// <summary>Which demo backend runs behind the gateway: the ASP.NET Core one or the Express one.</summary>
public enum BackendKind
{
    /// <summary><c>src/DemoBackend</c> on the .NET backend library, from this build's output.</summary>
    Dotnet,

    /// <summary><c>src/node/demo</c> on the Express library, run with <c>node</c> after <c>npm ci</c> in <c>src/node</c>.</summary>
    Node,
}

/// <summary>
/// The command line that starts one demo backend of either kind on a loopback port. Both take the same
/// arguments (<c>--urls</c>, <c>--Demo:InstanceId</c>, <c>--Demo:SessionStore</c>, <c>--Baton:Secret</c>) and
/// answer the same routes, so a test or a load-test run changes only the kind.
/// </summary>
internal static class DemoBackendCommand
{
    /// <summary>The session stores each kind's demo has: the Express one has no shared store of its own.</summary>
    public static bool Supports(BackendKind kind, string sessionStore)
        => kind == BackendKind.Dotnet || sessionStore is "Baton" or "Memory";

    /// <param name="baseDirectory">The folder holding this build's <c>Baton.DemoBackend.dll</c>.</param>
    /// <param name="contentRoot">An empty folder of the backend's own (the .NET demo must not read another appsettings.json).</param>
    /// <param name="extra">Further <c>--Key=value</c> settings, understood by both kinds.</param>
    public static ProcessStartInfo Create(BackendKind kind, string baseDirectory, int port, string instanceId, string secret, string contentRoot, IEnumerable<string> extra)
    {
        List<string> args = ["--urls", $"http://127.0.0.1:{port}", $"--Demo:InstanceId={instanceId}", $"--Baton:Secret={secret}", .. extra];
        if (kind == BackendKind.Dotnet)
        {
            return Stack.Dotnet(baseDirectory, "Baton.DemoBackend.dll", [.. args, "--contentRoot", contentRoot, "--Logging:LogLevel:Default=Warning"]);
        }

        var start = new ProcessStartInfo("node") { WorkingDirectory = contentRoot };
        start.ArgumentList.Add(NodeDemoScript(baseDirectory));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }

    /// <summary><c>src/node/demo/server.js</c> of the repository this build came from, with its packages installed.</summary>
    public static string NodeDemoScript(string baseDirectory)
    {
        for (var folder = new DirectoryInfo(baseDirectory); folder is not null; folder = folder.Parent)
        {
            var node = Path.Combine(folder.FullName, "src", "node");
            if (File.Exists(Path.Combine(folder.FullName, "Baton.slnx")) && Directory.Exists(node))
            {
                if (!Directory.Exists(Path.Combine(node, "node_modules")))
                {
                    throw new InvalidOperationException($"The Express demo's packages are not installed: run `npm ci` in {node} (./test.sh does).");
                }

                return Path.Combine(node, "demo", "server.js");
            }
        }

        throw new InvalidOperationException($"The Express demo (src/node/demo) is not above {baseDirectory}: Node backends run from a checkout of the repository.");
    }
}
