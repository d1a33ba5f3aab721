using Baton.Backend;
using Baton.Gateway.Configuration;
using Baton.Gateway.Sessions;
using Baton.Protocol;
using Baton.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;

namespace Baton.Tests.Store;

/// <summary>
/// The journal's upkeep: compaction deletes only rows idle past any gateway's reach, never a session in use
/// (whose stored last use lags its real one), and a journal written before sessions had epochs is migrated
/// at startup with its sessions carrying on. No Redis here: what a restore finds, the journal held.
/// </summary>
[Trait("Category", "Functional")]
public sealed class JournalMaintenanceTests : IAsyncLifetime, IDisposable
{
    private readonly List<TestBackend> _backends = [];
    private readonly LogCapture _logs = new();

    public async Task InitializeAsync()
    {
        // The gateway's clock runs ahead here: the backends accept grants up to an hour off.
        for (var i = 1; i <= 2; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}", ["--Baton:Backend:ClockSkew=01:00:00"]));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    public void Dispose() => _logs.Dispose();

    [Fact]
    public async Task Compaction_DeletesOnlyRowsIdlePastRetention_NeverASessionInUseByReadsAlone()
    {
        // Idle timeout 4 min: a session is touched in the journal at most every 30 s of reads, and a row is
        // deleted 5.5 min (idle timeout + an eighth + a purge interval) after its stored last use.
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var gateway = await TestGateway.StartAsync(
            _backends,
            ["--Baton:Sessions:IdleTimeout=00:04:00", "--Baton:Sessions:PurgeInterval=00:01:00", "--Baton:Journal:CompactInterval=00:01:00"],
            builder =>
            {
                builder.Services.AddSingleton<TimeProvider>(time);
                _logs.AttachTo(builder);
            });
        using var client = gateway.NewClient();
        Assert.Equal(1, (await client.IncrementAsync()).Count);
        var id = SessionCookies.SessionIdOf(client, gateway);

        // Rows no gateway tracks (left by a crash): one idle past retention, one not yet.
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var gone = SessionId.New().Value;
        var kept = SessionId.New().Value;
        var retention = (long)gateway.Services.GetRequiredService<IOptions<BatonOptions>>().Value.Sessions.Retention.TotalMilliseconds;
        InsertRow(gateway.JournalPath, gone, lastAccess: now - (long)TimeSpan.FromMinutes(6).TotalMilliseconds, retention);
        InsertRow(gateway.JournalPath, kept, lastAccess: now - (long)TimeSpan.FromMinutes(3).TotalMilliseconds, retention);

        // Ten virtual minutes of reads only, 50 s apart, while compaction runs every minute.
        for (var step = 0; step < 12; step++)
        {
            time.Advance(TimeSpan.FromSeconds(50));
            Assert.Equal(1, (await client.ReadCounterAsync()).Count);
            if (step == 1)
            {
                await Eventually.TrueAsync(() => StoredSessions.FromJournal(gateway.JournalPath, gone) is null, TimeSpan.FromSeconds(10), "the first compaction should delete the row idle past retention");
                Assert.NotNull(StoredSessions.FromJournal(gateway.JournalPath, kept));
            }
        }

        // One more compaction, ten minutes on: long past when the session's first write alone would have expired.
        var compactions = Compactions();
        time.Advance(TimeSpan.FromSeconds(60));
        await Eventually.TrueAsync(() => Compactions() > compactions, TimeSpan.FromSeconds(10), "compaction should run again");
        Assert.NotNull(StoredSessions.FromJournal(gateway.JournalPath, id));

        // The session's backend dies: its state comes back from the journal.
        var serving = (await client.ReadCounterAsync()).Instance;
        var owner = _backends.Single(b => b.InstanceId == serving);
        _backends.Remove(owner);
        await owner.DisposeAsync();
        Assert.Equal(2, (await client.IncrementAsync()).Count);
    }

    [Fact]
    public async Task AJournalWrittenBeforeSessionsHadEpochs_IsMigratedAtStartup_AndItsSessionsCarryOn()
    {
        var path = Path.Combine(TestPaths.NewFolder("old-journal"), "journal.db");
        var id = SessionId.New();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString()))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE sessions (
                    id          TEXT PRIMARY KEY,
                    version     INTEGER NOT NULL,
                    state       BLOB    NOT NULL,
                    owner       TEXT,
                    updated_at  INTEGER NOT NULL,
                    last_access INTEGER NOT NULL
                );
                INSERT INTO sessions VALUES ($id, 2, $state, 'b1', $now, $now);
                """;
            command.Parameters.AddWithValue("$id", id.Value);
            command.Parameters.AddWithValue("$state", KeyedState.Encode(new Dictionary<string, byte[]> { ["counter"] = [0, 0, 0, 2] }));
            command.Parameters.AddWithValue("$now", now);
            command.ExecuteNonQuery();
        }

        await using var gateway = await TestGateway.StartAsync(_backends, [$"--Baton:JournalPath={path}"]);
        Assert.Equal(0, StoredSessions.FromJournal(path, id.Value)!.Epoch);
        var jar = new System.Net.CookieContainer();
        jar.Add(gateway.Address, new System.Net.Cookie(TestGateway.CookieName, new SessionCookie(new ProtocolKeys(TestGateway.Secret)).Protect(id)));
        using var client = gateway.ClientWithJar(jar);

        var answer = await client.IncrementAsync();

        Assert.Equal(3, answer.Count);
        Assert.Equal("b1", answer.Instance);
        Assert.Equal(3, StoredSessions.FromJournal(path, id.Value)!.Int32("counter"));
    }

    private int Compactions() => _logs.Lines.Count(l => l.Contains("[3009]", StringComparison.Ordinal));

    private static void InsertRow(string journalPath, string id, long lastAccess, long retention)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = journalPath, Pooling = false, DefaultTimeout = 10 }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = """
            INSERT INTO sessions (id, owner, epoch, version, last_access, expires_at) VALUES ($id, 'b1', 0, 1, $at, $expires);
            INSERT INTO session_states (id, version, state, digest) VALUES ($id, 1, x'00', $digest);
            """;
        command.Parameters.AddWithValue("$id", id);
        command.Parameters.AddWithValue("$digest", Baton.Protocol.Ids.Sha256([0]));
        command.Parameters.AddWithValue("$at", lastAccess);
        command.Parameters.AddWithValue("$expires", lastAccess + retention);
        command.ExecuteNonQuery();
    }
}
