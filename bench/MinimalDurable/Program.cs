using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using StackExchange.Redis;

// The smallest program that does the durable work Baton does for a change, as a benchmark's reference: the plain
// YARP app of bench/PlainYarp (HashCookie affinity) that, for every request that may change state (any method but
// GET and HEAD), awaits a Redis SET of Durable:StateBytes and a group-committed SQLite upsert (WAL,
// synchronous=FULL), both at once, before it forwards the request. No protocol, no digest, no fencing, no restore:
// what two awaited durable writes per change cost, and nothing else.
//   dotnet bench/MinimalDurable/bin/Release/net10.0/Baton.Bench.MinimalDurable.dll --urls http://127.0.0.1:6780 \
//     --Durable:Redis=127.0.0.1:6479 --Durable:JournalPath=/tmp/minimal.db \
//     --ReverseProxy:Clusters:demo:Destinations:b1:Address=http://127.0.0.1:6781 ...
// GET /_minimal/ready answers 200 once it listens.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddReverseProxy().LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"));
var durable = builder.Configuration.GetSection("Durable");
var state = new byte[durable.GetValue<int>("StateBytes")];
Random.Shared.NextBytes(state);
using var redis = await ConnectionMultiplexer.ConnectAsync(durable["Redis"] ?? throw new InvalidOperationException("Durable:Redis is required."));
await using var journal = new GroupCommitJournal(durable["JournalPath"] ?? throw new InvalidOperationException("Durable:JournalPath is required."));

var app = builder.Build();
app.MapGet("/_minimal/ready", () => "ready");
app.MapReverseProxy(proxy => proxy.Use(async (context, next) =>
{
    if (!HttpMethods.IsGet(context.Request.Method) && !HttpMethods.IsHead(context.Request.Method))
    {
        var key = context.Request.Cookies[".Yarp.Affinity"] ?? context.Connection.Id;
        await Task.WhenAll(redis.GetDatabase().StringSetAsync("minimal:" + key, state), journal.UpsertAsync(key, state));
    }

    await next();
}));
app.Run();

/// <summary>One writer upserting every queued state in one transaction per batch: a group commit.</summary>
internal sealed class GroupCommitJournal : IAsyncDisposable
{
    private readonly Channel<(string Key, byte[] State, TaskCompletionSource Done)> _queue =
        Channel.CreateUnbounded<(string, byte[], TaskCompletionSource)>(new UnboundedChannelOptions { SingleReader = true });

    private readonly SqliteConnection _connection;
    private readonly Task _writer;

    public GroupCommitJournal(string path)
    {
        _connection = new SqliteConnection($"Data Source={path}");
        _connection.Open();
        using var setUp = _connection.CreateCommand();
        setUp.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, version INTEGER NOT NULL, state BLOB NOT NULL);";
        setUp.ExecuteNonQuery();
        _writer = Task.Run(WriteAsync);
    }

    public Task UpsertAsync(string key, byte[] state)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _queue.Writer.TryWrite((key, state, done));
        return done.Task;
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer;
        await _connection.DisposeAsync();
    }

    private async Task WriteAsync()
    {
        var batch = new List<(string Key, byte[] State, TaskCompletionSource Done)>();
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (batch.Count < 256 && _queue.Reader.TryRead(out var item))
            {
                batch.Add(item);
            }

            try
            {
                using var transaction = _connection.BeginTransaction();
                using var command = _connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = "INSERT INTO sessions (id, version, state) VALUES ($id, 1, $state) ON CONFLICT(id) DO UPDATE SET version = version + 1, state = excluded.state";
                var id = command.Parameters.Add("$id", SqliteType.Text);
                var blob = command.Parameters.Add("$state", SqliteType.Blob);
                foreach (var item in batch)
                {
                    id.Value = item.Key;
                    blob.Value = item.State;
                    command.ExecuteNonQuery();
                }

                transaction.Commit();
                batch.ForEach(item => item.Done.TrySetResult());
            }
            catch (SqliteException ex)
            {
                batch.ForEach(item => item.Done.TrySetException(ex));
            }

            batch.Clear();
        }
    }
}
