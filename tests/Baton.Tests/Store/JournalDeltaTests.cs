using System.Diagnostics.Metrics;
using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Baton.Gateway.Store;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Baton.Tests.Store;

/// <summary>
/// Checkpoints that are deltas, on every journal provider (the SQLite file, a real PostgreSQL and a real MariaDB
/// server): kept as links after the session's whole state, folded on every read, ended by a whole state, an end or a
/// purge, and refused as unapplicable when they do not carry on from what the journal holds.
/// </summary>
[Trait("Category", "Functional")]
public sealed class JournalDeltaTests : IAsyncLifetime
{
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly string _sqlitePath = Path.Combine(TestPaths.NewFolder("delta-journal"), "journal.db");
    private readonly List<JournalTier> _tiers = [];
    private readonly long _t = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    private TestJournal? _journal;

    private TestJournal Journal => _journal!;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var tier in _tiers)
        {
            await tier.StopAsync(CancellationToken.None);
        }

        if (_journal is not null)
        {
            await _journal.DisposeAsync();
        }

        await _services.DisposeAsync();
    }

    [Theory]
    [InlineData(JournalKind.Sqlite)]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task DeltasOntoTheHeldVersion_AreLinksAfterTheWholeState_AndEveryReadFoldsThem(JournalKind kind)
    {
        var journal = await StartAsync(kind);
        var id = Ids.New();
        var whole = State(("a", [1]), ("big", new byte[64 * 1024]));
        Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(Whole(id, 1, 2, whole)));

        // A delta onto the version held: stored, and read back whole, with the digest of the whole state.
        // Each delta stored reports the chain the journal holds after it: its links and their bytes.
        var first = Delta(id, 2, 1, 2, ("a", [2]));
        Assert.Equal((SaveOutcome.Stored, (1, (long)first.State.Length)), await CheckpointWithChainAsync(journal, first));
        var expected = State(("a", [2]), ("big", new byte[64 * 1024]));
        await AssertHoldsAsync(journal, id, 2, 2, expected);
        Assert.Equal(1, await Journal.LinkCountAsync(id, _sqlitePath));

        // A second delta counting from before the version held (it holds every change since its base) folds onto the first.
        var second = Delta(id, 3, 1, 2, ("a", null), ("c", [3]));
        Assert.Equal((SaveOutcome.Stored, (2, (long)(first.State.Length + second.State.Length))), await CheckpointWithChainAsync(journal, second));
        expected = State(("big", new byte[64 * 1024]), ("c", [3]));
        var folded = await AssertHoldsAsync(journal, id, 3, 2, expected);
        Assert.Equal(("b1", _t + 3, _t + 1003), (folded.Owner, folded.LastAccess, folded.ExpiresAt));
        Assert.Equal(2, await Journal.LinkCountAsync(id, _sqlitePath));

        // The whole state was not written again: the journal still keeps the one of version 1 under the links.
        Assert.Equal(whole, await RawStateAsync(id));

        // Every other read folds too: the refill's read of live sessions. The startup summary counts the whole state alone
        // (an estimate the session's next checkpoint replaces), never its links on top.
        var live = await ReadLiveAsync(journal, id);
        Assert.Equal((3L, Ids.Sha256(expected)), (live.Version, live.Digest));
        Assert.Equal(expected, live.State);
        var summary = await ScanAsync(journal, id);
        Assert.Equal(3, summary.Version);
        Assert.Equal(whole.Length, summary.StateBytes);

        // Refused and changing nothing: a delta above the version held, of another epoch, of a session the journal does
        // not hold; stale, fenced and diverged as a whole state would be.
        var absent = Ids.New();
        (SessionRecord Delta, SaveOutcome Expected)[] refused =
        [
            (Delta(id, 5, 4, 2, ("d", [4])), SaveOutcome.Unapplicable),
            (Delta(id, 4, 3, 3, ("d", [4])), SaveOutcome.Unapplicable),
            (Delta(absent, 2, 1, 2, ("d", [4])), SaveOutcome.Unapplicable),
            (Delta(id, 3, 2, 2, ("d", [4])), SaveOutcome.Stale),
            (Delta(id, 2, 1, 2, ("d", [4])), SaveOutcome.Stale),
            (Delta(id, 4, 3, 1, ("d", [4])), SaveOutcome.Fenced),
            (Delta(id, 3, 2, 3, ("d", [4])), SaveOutcome.Diverged),
        ];
        foreach (var (delta, outcome) in refused)
        {
            Assert.Equal((outcome, (0, 0L)), await CheckpointWithChainAsync(journal, delta));
            Assert.Null((await journal.GetAsync(absent, CancellationToken.None)).Record);
            await AssertHoldsAsync(journal, id, 3, 2, expected);
            Assert.Equal(2, await Journal.LinkCountAsync(id, _sqlitePath));
        }

        // A move keeps the chain (version and state), in the new epoch; then deltas of that epoch carry on, several in
        // one commit as well as one by one.
        Assert.Equal(WriteOutcome.Written, await journal.MoveAsync(id, "b2", 3, _t + 10, _t + 1010));
        Assert.Equal(WriteOutcome.Written, await journal.TouchAsync(id, _t + 11, _t + 1011));
        Assert.Equal("b2", (await AssertHoldsAsync(journal, id, 3, 3, expected)).Owner);
        var together = new[] { Delta(id, 4, 3, 3, ("e", [4])), Delta(id, 5, 4, 3, ("e", [5])), Delta(id, 6, 4, 3, ("e", [6]), ("f", [6])) }.Select(d => journal.CheckpointAsync(d)).ToList();
        Assert.All(await Task.WhenAll(together), o => Assert.Equal(SaveOutcome.Stored, o));
        await AssertHoldsAsync(journal, id, 6, 3, State(("big", new byte[64 * 1024]), ("c", [3]), ("e", [6]), ("f", [6])));
        Assert.Equal(5, await Journal.LinkCountAsync(id, _sqlitePath));

        // A whole state ends the chain: it is what a read returns, and no link is left; it reports no chain, and the next
        // delta is its first link.
        var next = State(("g", [7]));
        Assert.Equal((SaveOutcome.Stored, (0, 0L)), await CheckpointWithChainAsync(journal, Whole(id, 7, 3, next)));
        await AssertHoldsAsync(journal, id, 7, 3, next);
        Assert.Equal(0, await Journal.LinkCountAsync(id, _sqlitePath));
        Assert.Equal(next, await RawStateAsync(id));

        // An end drops the session's links, and so does a purge.
        var eighth = Delta(id, 8, 7, 3, ("g", [8]));
        Assert.Equal((SaveOutcome.Stored, (1, (long)eighth.State.Length)), await CheckpointWithChainAsync(journal, eighth));
        Assert.Equal(1, await Journal.LinkCountAsync(id, _sqlitePath));
        Assert.Equal(WriteOutcome.Written, await journal.EndAsync(id));
        Assert.Null((await journal.GetAsync(id, CancellationToken.None)).Record);
        Assert.Equal(0, await Journal.LinkCountAsync(id, _sqlitePath));

        var expiring = Ids.New();
        Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(Whole(expiring, 1, 0, State(("a", [1])))));
        Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(Delta(expiring, 2, 1, 0, ("a", [2]))));
        Assert.Equal(1, await Journal.LinkCountAsync(expiring, _sqlitePath));
        Assert.Equal(1, await journal.PurgeAsync(_t + 5000));
        Assert.Null((await journal.GetAsync(expiring, CancellationToken.None)).Record);
        Assert.Equal(0, await Journal.LinkCountAsync(expiring, _sqlitePath));
    }

    [Theory]
    [InlineData(JournalKind.Sqlite)]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task AChainWithADamagedOrMissingLink_IsReadWithTheDamagedDigest(JournalKind kind)
    {
        var journal = await StartAsync(kind);
        var links = kind == JournalKind.Sqlite ? "session_links" : "baton_session_links";
        var damaged = Ids.New();
        var cut = Ids.New();
        foreach (var id in new[] { damaged, cut })
        {
            Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(Whole(id, 1, 0, State(("a", [1])))));
            Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(Delta(id, 2, 1, 0, ("a", [2]))));
            Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(Delta(id, 3, 2, 0, ("b", [3]))));
            await AssertHoldsAsync(journal, id, 3, 0, State(("a", [2]), ("b", [3])));
        }

        // One link no longer matches its digest; of the other chain the last link is gone.
        await Journal.ExecuteAsync($"UPDATE {links} SET digest = '{Ids.Sha256([9])}' WHERE id = '{damaged}' AND version = 2", _sqlitePath);
        await Journal.ExecuteAsync($"DELETE FROM {links} WHERE id = '{cut}' AND version = 3", _sqlitePath);

        foreach (var id in new[] { damaged, cut })
        {
            var read = (await journal.GetAsync(id, CancellationToken.None)).Record!;
            Assert.Equal((3L, StateChain.DamagedDigest), (read.Version, read.Digest));
            Assert.NotEqual(Ids.Sha256(read.State), read.Digest);
            Assert.Equal(StateChain.DamagedDigest, (await ReadLiveAsync(journal, id)).Digest);
        }
    }

    [Theory]
    [InlineData(JournalKind.Sqlite)]
    [InlineData(JournalKind.PostgreSql)]
    [InlineData(JournalKind.MySql)]
    public async Task AJournalOfSchemaVersionTwo_IsMigratedAtOpen_KeepsItsSessions_AndAReopenedJournalReadsThemFolded(JournalKind kind)
    {
        var kept = Ids.New();
        var moved = Ids.New();
        var keptState = State(("a", [1]), ("big", new byte[4096]));
        if (kind == JournalKind.Sqlite)
        {
            _journal = await TestJournal.StartAsync(kind);
            WriteSchemaTwoJournal(_sqlitePath, (kept, "b1", 2, 5, keptState), (moved, "b3", 4, 0, []));
        }
        else
        {
            // The database as a gateway of schema 2 left it: no links table, no state version.
            var first = await StartAsync(kind);
            Assert.Equal(SaveOutcome.Stored, await first.CheckpointAsync(Whole(kept, 5, 2, keptState)));
            Assert.Equal(WriteOutcome.Written, await first.MoveAsync(moved, "b3", 4, _t, _t + 1000));
            await StopAsync(first);
            await Journal.ExecuteAsync("DROP TABLE baton_session_links");
            await Journal.ExecuteAsync("ALTER TABLE baton_sessions DROP COLUMN state_version");
            await Journal.ExecuteAsync("UPDATE baton_schema SET version = 2");
        }

        var journal = await StartAsync(kind);
        Assert.Equal(3, await SchemaVersionAsync(kind));
        await AssertHoldsAsync(journal, kept, 5, 2, keptState);
        var empty = (await journal.GetAsync(moved, CancellationToken.None)).Record!;
        Assert.Equal(("b3", 4L, 0L, SessionRecord.EmptyDigest), (empty.Owner, empty.Epoch, empty.Version, empty.Digest));
        Assert.Empty(empty.State);

        // A migrated session takes deltas; a journal opened again reads it folded.
        Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(Delta(kept, 6, 5, 2, ("a", [6]))));
        Assert.Equal(SaveOutcome.Stored, await journal.CheckpointAsync(Delta(kept, 7, 6, 2, ("b", [7]))));
        Assert.Equal(SaveOutcome.Unapplicable, await journal.CheckpointAsync(Delta(moved, 2, 1, 4, ("a", [1]))));
        await StopAsync(journal);

        var reopened = await StartAsync(kind);
        var expected = State(("a", [6]), ("b", [7]), ("big", new byte[4096]));
        await AssertHoldsAsync(reopened, kept, 7, 2, expected);
        Assert.Equal(expected, (await ReadLiveAsync(reopened, kept)).State);
        Assert.Equal(keptState, await RawStateAsync(kept));
    }

    private async Task<JournalTier> StartAsync(JournalKind kind)
    {
        _journal ??= await TestJournal.StartAsync(kind);
        var options = Options.Create(new BatonOptions());
        options.Value.Journal.Path = _sqlitePath;
        var metrics = new BatonMetrics(_services.GetRequiredService<IMeterFactory>());
        IJournalEngine engine = kind == JournalKind.Sqlite
            ? new SqliteJournal(options, new HostingEnvironment { ContentRootPath = Path.GetDirectoryName(_sqlitePath)! }, TimeProvider.System, metrics, NullLogger<SqliteJournal>.Instance)
            : kind == JournalKind.PostgreSql ? new PostgreSqlJournal(WithConnection(options), NullLogger<PostgreSqlJournal>.Instance) : new MySqlJournal(WithConnection(options), NullLogger<MySqlJournal>.Instance);
        var tier = new JournalTier(engine, options, metrics, NullLogger<JournalTier>.Instance);
        await tier.StartAsync(CancellationToken.None);
        _tiers.Add(tier);
        return tier;
    }

    private IOptions<BatonOptions> WithConnection(IOptions<BatonOptions> options)
    {
        options.Value.Journal.ConnectionString = Journal.ConnectionString;
        return options;
    }

    private async Task StopAsync(JournalTier tier)
    {
        _tiers.Remove(tier);
        await tier.StopAsync(CancellationToken.None);
    }

    private SessionRecord Whole(string id, long version, long epoch, byte[] state)
        => new(id, "b1", epoch, version, state, Ids.Sha256(state), _t + version, _t + 1000 + version);

    private SessionRecord Delta(string id, long version, long deltaBase, long epoch, params (string Key, byte[]? Value)[] changes)
    {
        var delta = KeyedState.EncodeDelta(changes.Select(c => KeyValuePair.Create(c.Key, c.Value)))!;
        return new SessionRecord(id, "b9", epoch, version, delta, Ids.Sha256(delta), _t + version, _t + 1000 + version) { DeltaBase = deltaBase };
    }

    private static async Task<(SaveOutcome, (int, long))> CheckpointWithChainAsync(JournalTier journal, SessionRecord record)
    {
        var report = new CheckpointReport();
        var outcome = await journal.CheckpointAsync(record, report);
        return (outcome, report.Chain);
    }

    private static byte[] State(params (string Key, byte[] Value)[] values) => KeyedState.Encode(values.ToDictionary(v => v.Key, v => v.Value));

    private static async Task<SessionRecord> AssertHoldsAsync(JournalTier journal, string id, long version, long epoch, byte[] state)
    {
        var read = (await journal.GetAsync(id, CancellationToken.None)).Record;
        Assert.NotNull(read);
        Assert.Equal((version, epoch), (read.Version, read.Epoch));
        Assert.Equal(state, read.State);
        Assert.Equal(Ids.Sha256(state), read.Digest);
        return read;
    }

    private static async Task<SessionRecord> ReadLiveAsync(JournalTier journal, string id)
    {
        await foreach (var record in journal.ReadLiveAsync(0, CancellationToken.None))
        {
            if (record.SessionId == id)
            {
                return record;
            }
        }

        throw new Xunit.Sdk.XunitException($"{id} should be read among the live sessions");
    }

    private static async Task<SessionSummary> ScanAsync(JournalTier journal, string id)
    {
        await foreach (var summary in journal.ScanLive(0).Records)
        {
            if (summary.SessionId == id)
            {
                return summary;
            }
        }

        throw new Xunit.Sdk.XunitException($"{id} should be among the live sessions");
    }

    // The whole state the journal keeps for the session, under its links.
    private async Task<byte[]> RawStateAsync(string id)
    {
        if (Journal.Kind == JournalKind.Sqlite)
        {
            await using var connection = new SqliteConnection($"Data Source={_sqlitePath};Mode=ReadOnly;Pooling=false");
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT state FROM session_states WHERE id = $id";
            command.Parameters.AddWithValue("$id", id);
            return (byte[])(await command.ExecuteScalarAsync())!;
        }

        await using var server = Journal.Kind == JournalKind.PostgreSql
            ? (System.Data.Common.DbConnection)new Npgsql.NpgsqlConnection(Journal.ConnectionString + ";Pooling=false")
            : new MySqlConnector.MySqlConnection(Journal.ConnectionString + ";Pooling=false");
        await server.OpenAsync();
        await using var select = server.CreateCommand();
        select.CommandText = $"SELECT state FROM baton_sessions WHERE id = '{id}'";
        return (byte[])(await select.ExecuteScalarAsync())!;
    }

    private async Task<long> SchemaVersionAsync(JournalKind kind)
    {
        await using var connection = kind switch
        {
            JournalKind.Sqlite => (System.Data.Common.DbConnection)new SqliteConnection($"Data Source={_sqlitePath};Mode=ReadOnly;Pooling=false"),
            JournalKind.PostgreSql => new Npgsql.NpgsqlConnection(Journal.ConnectionString + ";Pooling=false"),
            _ => new MySqlConnector.MySqlConnection(Journal.ConnectionString + ";Pooling=false"),
        };
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT max(version) FROM baton_schema";
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    // A journal as a gateway of schema 2 wrote it: one whole record per row.
    private void WriteSchemaTwoJournal(string path, params (string Id, string Owner, long Epoch, long Version, byte[] State)[] sessions)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            PRAGMA journal_mode = WAL;
            CREATE TABLE sessions (
                id          TEXT PRIMARY KEY,
                owner       TEXT,
                epoch       INTEGER NOT NULL,
                version     INTEGER NOT NULL,
                state       BLOB    NOT NULL,
                digest      TEXT    NOT NULL,
                last_access INTEGER NOT NULL,
                expires_at  INTEGER NOT NULL
            );
            CREATE INDEX sessions_last_access ON sessions(last_access);
            CREATE INDEX sessions_expires_at ON sessions(expires_at);
            CREATE TABLE baton_schema (version INTEGER NOT NULL);
            INSERT INTO baton_schema (version) VALUES (2);
            """;
        command.ExecuteNonQuery();
        command.CommandText = "INSERT INTO sessions VALUES ($id, $owner, $epoch, $version, $state, $digest, $at, $expires)";
        foreach (var (id, owner, epoch, version, state) in sessions)
        {
            command.Parameters.Clear();
            command.Parameters.AddWithValue("$id", id);
            command.Parameters.AddWithValue("$owner", owner);
            command.Parameters.AddWithValue("$epoch", epoch);
            command.Parameters.AddWithValue("$version", version);
            command.Parameters.AddWithValue("$state", state);
            command.Parameters.AddWithValue("$digest", Ids.Sha256(state));
            command.Parameters.AddWithValue("$at", _t);
            command.Parameters.AddWithValue("$expires", _t + 1000);
            command.ExecuteNonQuery();
        }
    }
}
