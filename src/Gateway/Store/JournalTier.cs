using System.Threading.Channels;
using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Store;

/// <summary>
/// The durable tier, on a journal engine (SQLite embedded, or a PostgreSQL or MySQL server). Every write
/// goes through one writer thread that commits whatever is queued in a single transaction (group commit), so many
/// concurrent requests share one commit; reads use pooled connections of their own. The queue is bounded
/// (<c>Baton:Journal:QueueLength</c>): past it a write is refused at once (Busy), never queued. A failed commit
/// answers Unavailable to every write of its batch. Nothing is opened until the host starts the tier.
/// </summary>
internal sealed class JournalTier : IDurableTier, IHostedService
{
    private readonly Channel<JournalCommand> _queue;
    private readonly IJournalEngine _engine;
    private readonly int _maxBatch;
    private readonly long _maxSizeBytes;
    private readonly BatonMetrics _metrics;
    private readonly ILogger<JournalTier> _logger;
    private Thread? _writer;
    private readonly TaskCompletionSource _writerDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastCommitUnixMs;
    private long _inFlightSince;
    private long _sizeMeasuredAt = long.MinValue / 2;
    private long _fullCompactAt = long.MinValue / 2;
    private bool _full;
    private string _lastFailure = "not started";
    private long _commitStarted;
    private readonly long _timeoutMs;

    public JournalTier(IJournalEngine engine, IOptions<BatonOptions> options, BatonMetrics metrics, ILogger<JournalTier> logger)
    {
        var journal = options.Value.Journal;
        _engine = engine;
        _maxBatch = journal.MaxBatchSize;
        _maxSizeBytes = journal.MaxSizeBytes;
        _timeoutMs = (long)engine.Timeout.TotalMilliseconds;
        _metrics = metrics;
        _logger = logger;
        _queue = Channel.CreateBounded<JournalCommand>(new BoundedChannelOptions(journal.QueueLength)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public string Name => _engine.Name;

    public bool IsConfigured => true;

    /// <summary>The journal is the authority: it holds every write it acknowledged.</summary>
    public bool IsCurrent => true;

    /// <summary>Where the journal is: the SQLite file's full path, or the server and database (never a password).</summary>
    public string Location => _engine.Location;

    /// <summary>
    /// True for a journal other gateways share (a database server): it may hold sessions this gateway has never
    /// seen, so a cookie the pin table does not know is looked up in it.
    /// </summary>
    public bool IsShared => _engine.IsShared;

    /// <summary>
    /// True when this gateway's local journal began empty at startup — none was there (a new disk), or a damaged one
    /// was moved aside: sessions live in Redis may be missing from it.
    /// </summary>
    public bool StartedEmpty => _engine.StartedEmpty;

    /// <summary>Where a damaged journal found at startup was moved; null when it opened cleanly.</summary>
    public string? QuarantinedTo => _engine.QuarantinedTo;

    /// <summary>The engine's timeout and a little more, for its own answer to come first (see <see cref="IDurableTier.CommitWait"/>).</summary>
    public TimeSpan CommitWait => TimeSpan.FromMilliseconds(_timeoutMs + 500);

    /// <summary>Why the last commit failed (for the log of a write Redis alone holds).</summary>
    public string LastFailure => Volatile.Read(ref _lastFailure);

    /// <summary>Writes waiting for the writer.</summary>
    public int QueueLength => _queue.Reader.Count;

    /// <summary>When the last commit succeeded; null before the first.</summary>
    public DateTimeOffset? LastCommit => Volatile.Read(ref _lastCommitUnixMs) is var ms and > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;

    /// <summary>
    /// How long the oldest write not yet committed has waited (zero when none): the time clients wait for
    /// the journal, and in the RiskLossOnGatewayCrash mode the window of changes a gateway crash would lose.
    /// </summary>
    public TimeSpan Lag
    {
        get
        {
            var oldest = Volatile.Read(ref _inFlightSince);
            if (_queue.Reader.TryPeek(out var next) && (oldest == 0 || next.Enqueued < oldest))
            {
                oldest = next.Enqueued;
            }

            return oldest == 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Max(0, Environment.TickCount64 - oldest));
        }
    }

    /// <summary>The journal's size on disk where the engine knows it (SQLite: the file with its write-ahead log).</summary>
    public long SizeBytes => _engine.SizeBytes ?? 0;

    /// <summary><c>Baton:Journal:MaxSizeBytes</c>.</summary>
    public long MaxSizeBytes => _maxSizeBytes;

    /// <summary>
    /// True while the journal is past <see cref="MaxSizeBytes"/>: state may not grow. Read on the write path,
    /// so the size is measured at most once a second. A file keeps its size after rows go (free pages, the
    /// write-ahead log's high mark), so a full journal is compacted at once — at most every
    /// <see cref="FullCompactInterval"/> — and counts as full only for what it still holds. A server journal's
    /// size is the database administrator's: it is never full here.
    /// </summary>
    public bool IsFull
    {
        get
        {
            var now = Environment.TickCount64;
            if (now - Volatile.Read(ref _sizeMeasuredAt) >= 1000)
            {
                Volatile.Write(ref _sizeMeasuredAt, now);
                var size = SizeBytes;
                var full = size > _maxSizeBytes;
                if (full && !_full)
                {
                    Log.JournalFull(_logger, size, _maxSizeBytes);
                }

                if (full && now - Volatile.Read(ref _fullCompactAt) >= (long)FullCompactInterval.TotalMilliseconds)
                {
                    Volatile.Write(ref _fullCompactAt, now);
                    _ = CompactAsync();
                }

                _full = full;
            }

            return _full;
        }
    }

    /// <summary>How often a journal found full is compacted, at most.</summary>
    private static TimeSpan FullCompactInterval => TimeSpan.FromSeconds(5);

    /// <summary>Opens the journal (creating or migrating its schema) and starts the writer.</summary>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        _engine.Open();
        _writer = new Thread(WriteLoop) { IsBackground = true, Name = "Baton journal writer" };
        _writer.Start();
        return Task.CompletedTask;
    }

    /// <summary>Commits what is queued, then closes the journal.</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _queue.Writer.TryComplete();
        if (_writer is not null)
        {
            await _writerDone.Task.WaitAsync(cancellationToken);
        }

        _engine.Close();
    }

    public async Task<SaveOutcome> CheckpointAsync(SessionRecord record, CheckpointReport? report = null)
    {
        var result = await EnqueueAsync(new JournalCommand.Checkpoint(record) { Report = report });
        return result >= 0 ? (SaveOutcome)result : Failed(result);
    }

    public async Task<WriteOutcome> MoveAsync(string sessionId, string owner, long epoch, long lastAccess, long expiresAt)
        => Written(await EnqueueAsync(new JournalCommand.Move(sessionId, owner, epoch, lastAccess, expiresAt)));

    public async Task<ClaimOutcome> ClaimAsync(string sessionId, string owner, long fromEpoch, long now, long expiresAt, long movingUntil)
        => await EnqueueAsync(new JournalCommand.Claim(sessionId, owner, fromEpoch, now, expiresAt, movingUntil)) switch
        {
            > 0 => ClaimOutcome.Won,
            0 => ClaimOutcome.Lost,
            BusyResult => ClaimOutcome.Busy,
            _ => ClaimOutcome.Unavailable,
        };

    public async Task<WriteOutcome> ReleaseAsync(string sessionId, long epoch) => Written(await EnqueueAsync(new JournalCommand.Release(sessionId, epoch)));

    public async Task<WriteOutcome> TouchAsync(string sessionId, long lastAccess, long expiresAt)
        => Written(await EnqueueAsync(new JournalCommand.Touch(sessionId, lastAccess, expiresAt)));

    public async Task<WriteOutcome> EndAsync(string sessionId) => Written(await EnqueueAsync(new JournalCommand.End(sessionId)));

    /// <summary>
    /// A batch takes no more writes once its checkpoints hold this much state: one commit stays well under a
    /// server's packet limit (MySQL's <c>max_allowed_packet</c>, 16 MiB by default on MariaDB) and its timeout.
    /// </summary>
    private const long MaxBatchStateBytes = 4 * 1024 * 1024;

    /// <summary>Most expired rows one purge deletes, so that a backlog never makes one commit outlast the timeout.</summary>
    public const int PurgeChunk = 1000;

    /// <summary>Deletes up to <see cref="PurgeChunk"/> sessions expired before <paramref name="now"/>; null when the journal failed.</summary>
    public async Task<int?> PurgeAsync(long now)
    {
        var result = await EnqueueAsync(new JournalCommand.Purge(now));
        return result >= 0 ? result : null;
    }

    /// <summary>Returns free space to the file system where the engine can (SQLite); true when done.</summary>
    public async Task<bool> CompactAsync() => await EnqueueAsync(new JournalCommand.Compact()) >= 0;

    public async Task<TierRead> GetAsync(string sessionId, CancellationToken cancellationToken)
    {
        if (Stuck)
        {
            return TierRead.Unavailable;
        }

        try
        {
            return new TierRead(true, await _engine.GetAsync(sessionId, cancellationToken));
        }
        catch (Exception ex) when (_engine.IsUnavailable(ex))
        {
            Log.JournalReadFailed(_logger, ex.Message);
            return TierRead.Unavailable;
        }
    }

    /// <summary>True when the session ended within the retention; null when the journal cannot say now.</summary>
    public async Task<bool?> HasEndedAsync(string sessionId, CancellationToken cancellationToken)
    {
        if (Stuck)
        {
            return null;
        }

        try
        {
            return await _engine.HasEndedAsync(sessionId, cancellationToken);
        }
        catch (Exception ex) when (_engine.IsUnavailable(ex))
        {
            Log.JournalReadFailed(_logger, ex.Message);
            return null;
        }
    }

    /// <summary>Every session used at or after the cutoff; a journal that cannot be read throws (the caller decides).</summary>
    public TierScan ScanLive(long cutoff) => new(_ => _engine.LoadLiveAsync(cutoff, CancellationToken.None));

    /// <summary>The sessions used at or after the cutoff, read whole (for refilling Redis).</summary>
    public IAsyncEnumerable<SessionRecord> ReadLiveAsync(long cutoff, CancellationToken cancellationToken) => _engine.ReadLiveAsync(cutoff, cancellationToken);

    public Task<bool> WaitAvailableAsync(TimeSpan timeout, CancellationToken cancellationToken) => Task.FromResult(true);

    /// <summary>True for a failure that means the journal cannot be read or written now (not a bug).</summary>
    public bool IsUnavailable(Exception exception) => _engine.IsUnavailable(exception);


    private const int BusyResult = -1;
    private const int UnavailableResult = -2;

    private static SaveOutcome Failed(int result) => result == BusyResult ? SaveOutcome.Busy : SaveOutcome.Unavailable;

    private static WriteOutcome Written(int result) => result switch
    {
        >= 0 => WriteOutcome.Written,
        BusyResult => WriteOutcome.Busy,
        _ => WriteOutcome.Unavailable,
    };

    /// <summary>
    /// True while a commit has run past the engine's timeout (a driver that does not give up in time on a hung server):
    /// writes and reads are answered at once as by an unreachable journal instead of queueing behind it.
    /// </summary>
    private bool Stuck => Volatile.Read(ref _commitStarted) is var started and not 0 && Environment.TickCount64 - started > _timeoutMs;

    private Task<int> EnqueueAsync(JournalCommand command)
    {
        if (_writer is null || Stuck)
        {
            return Task.FromResult(UnavailableResult);
        }

        if (!_queue.Writer.TryWrite(command))
        {
            _metrics.JournalQueueFull();
            return Task.FromResult(BusyResult);
        }

        return command.Completion.Task;
    }

    // Runs on its own thread and blocks between batches: no thread-pool hop stands between a queued
    // write and its commit.
    private void WriteLoop()
    {
        var batch = new List<JournalCommand>(_maxBatch);
        try
        {
            while (_queue.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            {
                batch.Clear();
                long stateBytes = 0;
                while (batch.Count < _maxBatch && stateBytes < MaxBatchStateBytes && _queue.Reader.TryRead(out var command))
                {
                    batch.Add(command);
                    stateBytes += command is JournalCommand.Checkpoint c ? c.Record.State.Length : 0;
                }

                Commit(batch);
            }
        }
        finally
        {
            _writerDone.TrySetResult();
        }
    }

    private void Commit(List<JournalCommand> batch)
    {
        var started = Environment.TickCount64;
        Volatile.Write(ref _inFlightSince, batch.Min(w => w.Enqueued));
        Volatile.Write(ref _commitStarted, started);
        try
        {
            var results = _engine.Commit(batch);
            Volatile.Write(ref _lastCommitUnixMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            Complete(batch, results);
            _metrics.JournalCommitted(batch.Count, Environment.TickCount64 - started);
        }
        catch (Exception ex)
        {
            // Whatever the engine threw, the writer lives on: a failure it does not know as an outage is a bug, logged
            // the same way, and the batch is answered unavailable (held by Redis alone, or not made).
            _metrics.JournalCommitFailed();
            Log.JournalCommitFailed(_logger, batch.Count, ex);
            Volatile.Write(ref _lastFailure, ex.Message);
            Complete(batch, null);
        }
        finally
        {
            Volatile.Write(ref _inFlightSince, 0);
            Volatile.Write(ref _commitStarted, 0);
        }
    }

    private static void Complete(List<JournalCommand> batch, int[]? results)
    {
        for (var i = 0; i < batch.Count; i++)
        {
            batch[i].Completion.TrySetResult(results?[i] ?? UnavailableResult);
        }
    }
}

/// <summary>A write waiting for the journal's writer; its result is the engine's answer (a <see cref="SaveOutcome"/> for a checkpoint, a count for a purge).</summary>
internal abstract record JournalCommand
{
    public TaskCompletionSource<int> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public long Enqueued { get; } = Environment.TickCount64;

    public sealed record Checkpoint(SessionRecord Record) : JournalCommand
    {
        /// <summary>Where the engine notes the chain a stored delta ends (a commit rolled back may have noted it: a count too high only asks the next change whole).</summary>
        public CheckpointReport? Report { get; init; }
    }

    public sealed record Move(string SessionId, string Owner, long Epoch, long LastAccess, long ExpiresAt) : JournalCommand;

    /// <summary>A move's check-and-set into epoch <see cref="FromEpoch"/> + 1 (see <see cref="IDurableTier.ClaimAsync"/>); 1 when it won.</summary>
    public sealed record Claim(string SessionId, string Owner, long FromEpoch, long Now, long ExpiresAt, long MovingUntil) : JournalCommand;

    /// <summary>Ends the lease of the move into <see cref="Epoch"/>.</summary>
    public sealed record Release(string SessionId, long Epoch) : JournalCommand;

    public sealed record Touch(string SessionId, long LastAccess, long ExpiresAt) : JournalCommand;

    /// <summary>Forgets the session; a server journal remembers for the retention that it ended (see <see cref="IDurableTier.HasEndedAsync"/>).</summary>
    public sealed record End(string SessionId) : JournalCommand
    {
        public long At { get; } = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    }

    public sealed record Purge(long Now) : JournalCommand;

    public sealed record Compact : JournalCommand;
}

/// <summary>
/// A journal's database: its schema, created and migrated at <see cref="Open"/> under a schema-version table, and
/// its statements. <see cref="Commit"/> runs on the journal's one writer thread and applies a batch in one
/// transaction; reads run on any thread, on connections of their own (a bounded pool).
/// </summary>
internal interface IJournalEngine
{
    /// <summary><c>sqlite</c>, <c>postgresql</c> or <c>mysql</c>.</summary>
    string Name { get; }

    /// <summary>Where the journal is, for logs and the status page (never a password).</summary>
    string Location { get; }

    /// <summary>True for a server several gateways share.</summary>
    bool IsShared { get; }

    /// <summary>True when a local journal began empty: none was there, or a damaged one was moved aside at open.</summary>
    bool StartedEmpty { get; }

    /// <summary>Where a damaged local journal was moved at open; null otherwise.</summary>
    string? QuarantinedTo { get; }

    /// <summary>The journal's size on disk, when the engine knows it.</summary>
    long? SizeBytes { get; }

    /// <summary>Longest one commit may wait on the database before it fails (a lock, a hung server).</summary>
    TimeSpan Timeout { get; }

    /// <summary>
    /// Opens the journal and brings its schema to the current version. A server that cannot be reached does not
    /// stop the gateway: the schema is made on the first commit that reaches it.
    /// </summary>
    void Open();

    /// <summary>Applies the batch in one transaction; one result per command. Throws when nothing was committed.</summary>
    int[] Commit(IReadOnlyList<JournalCommand> batch);

    Task<SessionRecord?> GetAsync(string sessionId, CancellationToken cancellationToken);

    /// <summary>True when the session ended within the retention (a shared journal keeps a mark; a local one need not).</summary>
    Task<bool> HasEndedAsync(string sessionId, CancellationToken cancellationToken);

    IAsyncEnumerable<SessionSummary> LoadLiveAsync(long cutoff, CancellationToken cancellationToken);

    IAsyncEnumerable<SessionRecord> ReadLiveAsync(long cutoff, CancellationToken cancellationToken);

    /// <summary>True for an exception that means the database cannot be used now (as opposed to a bug).</summary>
    bool IsUnavailable(Exception exception);

    /// <summary>Closes the journal after the writer's last commit.</summary>
    void Close();
}
