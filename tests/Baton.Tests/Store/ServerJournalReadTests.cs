using Baton.Gateway.Configuration;
using Baton.Gateway.Store;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Baton.Tests.Store;

/// <summary>A server journal's reads after the server restarted, with every pooled connection dead.</summary>
[Trait("Category", "Functional")]
public sealed class ServerJournalReadTests
{
    [Theory]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task AfterTheServerRestarted_TheFirstReadsOnAPoolOfDeadConnections_AreAnswered(JournalKind kind)
    {
        await using var journal = await TestJournal.StartAsync(kind);
        var options = Options.Create(new BatonOptions());
        options.Value.Journal.ConnectionString = journal.ConnectionString;
        using ServerJournal engine = kind == JournalKind.PostgreSql
            ? new PostgreSqlJournal(options, NullLogger<PostgreSqlJournal>.Instance)
            : new MySqlJournal(options, NullLogger<MySqlJournal>.Instance);
        engine.Open();

        // Reads at once leave several connections in the pool; then the server restarts, and all of them are dead.
        await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => engine.GetAsync(Ids.New(), CancellationToken.None)));
        await (await journal.OutageAsync(sqlitePath: string.Empty, hang: false)).DisposeAsync();

        Assert.Null(await engine.GetAsync(Ids.New(), CancellationToken.None));
        Assert.False(await engine.HasEndedAsync(Ids.New(), CancellationToken.None));
    }
}
