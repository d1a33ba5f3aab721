using System.Diagnostics;
using Baton.LoadTest;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// A real MariaDB server (see <see cref="DatabaseServer"/>): database <c>baton</c>, user <c>baton</c>@<c>127.0.0.1</c>,
/// no password; killed when disposed.
/// </summary>
internal sealed class MariaDbServer() : DatabaseServer("MariaDB", "mariadb")
{
    /// <summary>Run by each start before it takes connections; each statement changes nothing the second time.</summary>
    private const string InitScript = """
        CREATE DATABASE IF NOT EXISTS baton;
        CREATE USER IF NOT EXISTS 'baton'@'127.0.0.1';
        GRANT ALL PRIVILEGES ON *.* TO 'baton'@'127.0.0.1';
        """;

    /// <summary>The MySqlConnector connection string of database <c>baton</c>.</summary>
    public override string ConnectionString => $"Server=127.0.0.1;Port={Port};User ID=baton;Database=baton";

    protected override IEnumerable<string> LockFiles => [Path.Combine(Folder, "mysql.sock.lock")];

    protected override async Task CreateDataAsync()
    {
        await TestServers.SetUpAsync(new ProcessStartInfo(
            TestServers.MariaDbProgram("mariadb-install-db"),
            ["--no-defaults", "--datadir=" + Path.Combine(Folder, "data"), "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve", .. TestServers.MariaDbOptions])
        {
            WorkingDirectory = Folder,
        });
        await File.WriteAllTextAsync(Path.Combine(Folder, "init.sql"), InitScript);
    }

    protected override ManagedProcess CreateProcess() => TestServers.MariaDb("mariadb", Port, Folder, "baton", "baton");
}
