using System.Text.Json;

namespace Baton.LoadTest;

/// <summary>
/// A mode of the comparison, read from <c>config/loadtest/{name}.json</c>: the <c>LoadTest</c> section says
/// how to run it (gateway or not, how many backends, the backends' session store, whether Redis is used, and
/// optionally how many gateways behind HAProxy and which journal they share); the rest of the file is the
/// gateway's own configuration for that mode.
/// </summary>
internal sealed record ModeProfile(string Name, string Description, bool Gateway, int Backends, string BackendSessionStore, bool UsesRedis, string File, int Gateways = 1, string Journal = "Sqlite")
{
    /// <summary>The modes a comparison runs by default, in the order every output lists them.</summary>
    public static readonly IReadOnlyList<string> Names = ["sticky-checkpoint", "sticky-only", "shared-store", "direct"];

    /// <summary>Every mode <c>--modes</c> may name: the default ones, then the scale-out.</summary>
    public static readonly IReadOnlyList<string> Known = [.. Names, "multi-gateway"];

    /// <summary>Several gateways behind a balancer, on a shared journal.</summary>
    public bool ScaledOut => Gateways > 1;

    public static string Folder => Path.Combine(AppContext.BaseDirectory, "profiles");

    public static ModeProfile Load(string name)
    {
        var file = Path.Combine(Folder, name + ".json");
        if (!System.IO.File.Exists(file))
        {
            throw new UsageException($"No profile for mode '{name}' ({file}). Modes: {string.Join(", ", Known)}.");
        }

        using var document = JsonDocument.Parse(System.IO.File.ReadAllText(file));
        if (!document.RootElement.TryGetProperty("LoadTest", out var section))
        {
            throw new UsageException($"{file} has no LoadTest section.");
        }

        var backends = section.GetProperty(nameof(Backends)).GetInt32();
        if (backends is < 1 or > 9)
        {
            throw new UsageException($"{file}: LoadTest:Backends must be between 1 and 9.");
        }

        var gateways = section.TryGetProperty(nameof(Gateways), out var count) ? count.GetInt32() : 1;
        var journal = section.TryGetProperty(nameof(Journal), out var provider) ? provider.GetString() ?? "Sqlite" : "Sqlite";
        if (gateways is < 1 or > 3)
        {
            throw new UsageException($"{file}: LoadTest:Gateways must be between 1 and 3.");
        }

        if (journal is not ("Sqlite" or "PostgreSql") || (gateways > 1 && journal == "Sqlite"))
        {
            throw new UsageException($"{file}: LoadTest:Journal must be Sqlite or PostgreSql, and PostgreSql for several gateways (they share it).");
        }

        return new ModeProfile(
            name,
            section.GetProperty(nameof(Description)).GetString() ?? name,
            section.GetProperty(nameof(Gateway)).GetBoolean(),
            backends,
            section.GetProperty(nameof(BackendSessionStore)).GetString() ?? "Memory",
            section.GetProperty(nameof(UsesRedis)).GetBoolean(),
            file,
            gateways,
            journal);
    }
}

/// <summary>A command line the tool cannot run: the message says what is wrong.</summary>
internal sealed class UsageException(string message) : Exception(message);
