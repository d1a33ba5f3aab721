using System.Threading.Channels;
using Baton.Gateway.Configuration;
using Baton.Gateway.Diagnostics;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Options;

namespace Baton.Gateway.Store;

/// <summary>
/// The durable tier: one SQLite file in WAL mode. Every write goes through one writer task that commits
/// whatever is queued in a single transaction (group commit), so many concurrent requests share one
/// fsync. The highest version of a session wins; reads use their own connections.
/// </summary>
internal sealed partial class JournalTier : IAsyncDisposable
{
    private const string Schema = """
        CREATE TABLE IF NOT EXISTS sessions (
            id          TEXT PRIMARY KEY,
            version     INTEGER NOT NULL,
            state       BLOB    NOT NULL,
            owner       TEXT,
            epoch       INTEGER NOT NULL DEFAULT 0,
            updated_at  INTEGER NOT NULL,
            last_access INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS sessions_last_access ON sessions(last_access);
        """;

    private readonly Channel<JournalWrite> _queue;
    private readonly string _connectionString;
    private readonly int _maxBatch;
    private readonly BatonMetrics _metrics;
    private readonly ILogger<JournalTier> _logger;
    private readonly Task _writer;
    private readonly SqliteConnection _writeConnection;
    private readonly long _maxSizeBytes;
    private long _lastCommitUnixMs;
    private long _inFlightSince;
    private long _sizeMeasuredAt = long.MinValue / 2;
    private long _fullCompactAt = long.MinValue / 2;
    private bool _full;

    public JournalTier(IOptions<BatonOptions> options, IHostEnvironment environment, TimeProvider time, BatonMetrics metrics, ILogger<JournalTier> logger)
    {
        var settings = options.Value;
        Path = System.IO.Path.GetFullPath(settings.JournalPath, environment.ContentRootPath);
        _maxBatch = settings.Journal.MaxBatchSize;
        _maxSizeBytes = settings.Journal.MaxSizeBytes;
        _metrics = metrics;
        _logger = logger;
        _connectionString = new SqliteConnectionStringBuilder { DataSource = Path, Pooling = true, DefaultTimeout = (int)settings.Journal.LockTimeout.TotalSeconds }.ToString();
        _queue = Channel.CreateBounded<JournalWrite>(new BoundedChannelOptions(settings.Journal.QueueLength)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });

        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _writeConnection = OpenOrQuarantine(settings.Journal.Synchronous, time);
        _writer = Task.Factory.StartNew(WriteLoop, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>The journal file's full path.</summary>
    public string Path { get; }

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

    /// <summary>The journal's size on disk, with its write-ahead log.</summary>
    public long SizeBytes => new[] { Path, Path + "-wal" }.Where(File.Exists).Sum(f => new FileInfo(f).Length);

    /// <summary><c>Baton:Journal:MaxSizeBytes</c>.</summary>
    public long MaxSizeBytes => _maxSizeBytes;

    /// <summary>
    /// True while the journal is past <see cref="MaxSizeBytes"/>: state may not grow. Read on the write path,
    /// so the files are measured at most once a second. The files keep their size after rows go (free pages,
    /// the write-ahead log's high mark), so a full journal is compacted at once — at most every
    /// <see cref="FullCompactInterval"/> — and counts as full only for what it still holds.
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
                    CompactAsync().ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
                }

                _full = full;
            }

            return _full;
        }
    }

    /// <summary>How often a journal found full is compacted, at most.</summary>
    private static TimeSpan FullCompactInterval => TimeSpan.FromSeconds(5);

    /// <summary>Where a damaged journal found at startup was moved; null when the journal opened cleanly.</summary>
    public string? QuarantinedTo { get; private set; }

    /// <summary>
    /// Stores the checkpoint unless the session is in a later epoch than the checkpoint's (Fenced), or the journal
    /// holds the same or a newer version, of the same epoch (Stale) or an older one (Diverged).
    /// </summary>
    public async Task<SaveOutcome> SaveAsync(SessionRecord record)
        => await EnqueueAsync(new JournalWrite(JournalWriteKind.Checkpoint, record)) switch
        {
            1 => SaveOutcome.Stored,
            Statements.FencedResult => SaveOutcome.Fenced,
            Statements.DivergedResult => SaveOutcome.Diverged,
            _ => SaveOutcome.Stale,
        };

    /// <summary>
    /// Pins the session to <see cref="SessionRecord.Owner"/> in <see cref="SessionRecord.Epoch"/> (epochs only
    /// move forward), creating an empty version-0 record when new.
    /// </summary>
    public Task PinAsync(SessionRecord record) => EnqueueAsync(new JournalWrite(JournalWriteKind.Pin, record));

    /// <summary>Moves the session's last access forward (never back).</summary>
    public Task TouchAsync(string sessionId, long lastAccess)
        => EnqueueAsync(new JournalWrite(JournalWriteKind.Touch, new SessionRecord(sessionId, 0, [], null, 0, lastAccess)));

    public Task DeleteAsync(string sessionId)
        => EnqueueAsync(new JournalWrite(JournalWriteKind.Delete, new SessionRecord(sessionId, 0, [], null, 0, 0)));

    /// <summary>Deletes every session last used before <paramref name="cutoff"/>; returns how many.</summary>
    public Task<int> DeleteIdleSinceAsync(long cutoff)
        => EnqueueAsync(new JournalWrite(JournalWriteKind.DeleteIdle, new SessionRecord(string.Empty, 0, [], null, 0, cutoff)));

    public async Task<SessionRecord?> GetAsync(string sessionId, CancellationToken cancellationToken)
    {
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT version, state, owner, updated_at, last_access, epoch FROM sessions WHERE id = $id";
        command.Parameters.AddWithValue("$id", sessionId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        return new SessionRecord(sessionId, reader.GetInt64(0), (byte[])reader.GetValue(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4))
        {
            Epoch = reader.GetInt64(5),
        };
    }

    /// <summary>Every session used at or after <paramref name="cutoff"/>: what a starting gateway must know.</summary>
    public async Task<List<StoredPin>> LoadLiveAsync(long cutoff, CancellationToken cancellationToken)
    {
        var pins = new List<StoredPin>();
        await using var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, version, owner, epoch, last_access, length(state) FROM sessions WHERE last_access >= $cutoff";
        command.Parameters.AddWithValue("$cutoff", cutoff);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            pins.Add(new StoredPin(reader.GetString(0), reader.GetInt64(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4), reader.IsDBNull(5) ? 0 : reader.GetInt32(5)));
        }

        return pins;
    }

    /// <summary>Writes the WAL back into the database and returns free pages to the file system.</summary>
    public Task CompactAsync() => EnqueueAsync(new JournalWrite(JournalWriteKind.Compact, new SessionRecord(string.Empty, 0, [], null, 0, 0)));

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _writer;
        using (var command = _writeConnection.CreateCommand())
        {
            command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE);";
            command.ExecuteNonQuery();
        }

        await _writeConnection.DisposeAsync();
        SqliteConnection.ClearPool(new SqliteConnection(_connectionString));
    }

    private async Task<int> EnqueueAsync(JournalWrite write)
    {
        if (!_queue.Writer.TryWrite(write))
        {
            _metrics.JournalQueueFull();
            throw new JournalUnavailableException("The journal's write queue is full (Baton:Journal:QueueLength).");
        }

        return await write.Completion.Task;
    }

    /// <summary>
    /// Opens the journal; a damaged one (not a database, or failing its integrity check) is renamed aside
    /// — never deleted, never retried in a crash loop — and a fresh journal is started, for the session
    /// store to rebuild from Redis.
    /// </summary>
    private SqliteConnection OpenOrQuarantine(JournalSynchronous synchronous, TimeProvider time)
    {
        try
        {
            return Open(synchronous);
        }
        catch (Exception ex) when (ex is JournalUnavailableException or SqliteException { SqliteErrorCode: 11 or 26 })
        {
            SqliteConnection.ClearAllPools();
            QuarantinedTo = $"{Path}.corrupt-{time.GetUtcNow().ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture)}";
            foreach (var suffix in new[] { string.Empty, "-wal", "-shm" })
            {
                if (File.Exists(Path + suffix))
                {
                    File.Move(Path + suffix, QuarantinedTo + suffix);
                }
            }

            _metrics.JournalQuarantined();
            Log.JournalQuarantined(_logger, Path, QuarantinedTo, ex.Message);
            return Open(synchronous);
        }
    }

    private SqliteConnection Open(JournalSynchronous synchronous)
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA auto_vacuum = INCREMENTAL;";
        command.ExecuteNonQuery();
        command.CommandText = "PRAGMA journal_mode = WAL;";
        command.ExecuteNonQuery();
        command.CommandText = $"PRAGMA synchronous = {(synchronous == JournalSynchronous.Full ? "FULL" : "NORMAL")};";
        command.ExecuteNonQuery();
        command.CommandText = "PRAGMA quick_check;";
        var verdict = command.ExecuteScalar() as string;
        if (!string.Equals(verdict, "ok", StringComparison.Ordinal))
        {
            connection.Dispose();
            throw new JournalUnavailableException($"The journal {Path} failed its integrity check: {verdict}");
        }

        command.CommandText = Schema;
        command.ExecuteNonQuery();

        // Journals written before sessions had epochs gain the column; their sessions start at epoch 0.
        command.CommandText = "SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'epoch';";
        if (Convert.ToInt64(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            command.CommandText = "ALTER TABLE sessions ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;";
            command.ExecuteNonQuery();
        }
        Log.JournalOpened(_logger, Path, synchronous.ToString());
        return connection;
    }

    // Runs on its own thread and blocks between batches: no thread-pool hop stands between a queued
    // write and its commit.
    private void WriteLoop()
    {
        var batch = new List<JournalWrite>(_maxBatch);
        using var statements = new Statements(_writeConnection);
        while (_queue.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            batch.Clear();
            while (batch.Count < _maxBatch && _queue.Reader.TryRead(out var write))
            {
                batch.Add(write);
            }

            var started = Environment.TickCount64;
            Volatile.Write(ref _inFlightSince, batch.Min(w => w.Enqueued));
            try
            {
                var results = statements.Commit(batch, out var compactionFailure);
                if (compactionFailure is not null)
                {
                    // The batch is committed either way; only the space is not returned yet.
                    Log.BackgroundWriteFailed(_logger, "compact", compactionFailure);
                }

                Volatile.Write(ref _lastCommitUnixMs, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Completion.TrySetResult(results[i]);
                }

                _metrics.JournalCommitted(batch.Count, Environment.TickCount64 - started);
            }
            catch (Exception ex) when (ex is SqliteException or IOException or InvalidOperationException)
            {
                _metrics.JournalCommitFailed();
                Log.JournalCommitFailed(_logger, batch.Count, ex);
                var failure = new JournalUnavailableException("The journal could not commit: " + ex.Message, ex);
                foreach (var write in batch)
                {
                    write.Completion.TrySetException(failure);
                }
            }
            finally
            {
                Volatile.Write(ref _inFlightSince, 0);
            }
        }
    }

    private enum JournalWriteKind
    {
        Checkpoint,
        Pin,
        Touch,
        Delete,
        DeleteIdle,
        Compact,
    }

    private sealed record JournalWrite(JournalWriteKind Kind, SessionRecord Record)
    {
        public TaskCompletionSource<int> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public long Enqueued { get; } = Environment.TickCount64;
    }

    /// <summary>The writer's prepared statements, on the one write connection.</summary>
    private sealed class Statements : IDisposable
    {
        private readonly SqliteConnection _connection;
        /// <summary>What a checkpoint write returns when the session is in a later epoch.</summary>
        public const int FencedResult = 2;

        /// <summary>What a checkpoint write returns when an older epoch already holds this version or a newer one.</summary>
        public const int DivergedResult = 3;

        private readonly SqliteCommand _checkpoint;
        private readonly SqliteCommand _fenced;
        private readonly SqliteCommand _pin;
        private readonly SqliteCommand _touch;
        private readonly SqliteCommand _delete;
        private readonly SqliteCommand _deleteIdle;

        public Statements(SqliteConnection connection)
        {
            _connection = connection;
            _checkpoint = Prepare("""
                INSERT INTO sessions (id, version, state, owner, epoch, updated_at, last_access) VALUES ($id, $version, $state, $owner, $epoch, $updated, $access)
                ON CONFLICT (id) DO UPDATE SET version = excluded.version, state = excluded.state, owner = coalesce(excluded.owner, owner),
                    epoch = excluded.epoch, updated_at = excluded.updated_at, last_access = max(last_access, excluded.last_access)
                WHERE excluded.version > sessions.version AND excluded.epoch >= sessions.epoch
                """, "$id", "$version", "$state", "$owner", "$epoch", "$updated", "$access");
            _fenced = Prepare("SELECT epoch FROM sessions WHERE id = $id", "$id");
            _pin = Prepare("""
                INSERT INTO sessions (id, version, state, owner, epoch, updated_at, last_access) VALUES ($id, 0, x'', $owner, $epoch, $updated, $access)
                ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, epoch = max(epoch, excluded.epoch), last_access = max(last_access, excluded.last_access)
                """, "$id", "$owner", "$epoch", "$updated", "$access");
            _touch = Prepare("UPDATE sessions SET last_access = max(last_access, $access) WHERE id = $id", "$id", "$access");
            _delete = Prepare("DELETE FROM sessions WHERE id = $id", "$id");
            _deleteIdle = Prepare("DELETE FROM sessions WHERE last_access < $access", "$access");
        }

        /// <param name="compactionFailure">Why compacting after the commit failed (the commit itself stands).</param>
        public int[] Commit(List<JournalWrite> batch, out Exception? compactionFailure)
        {
            compactionFailure = null;
            var results = new int[batch.Count];
            var compact = false;
            using (var transaction = _connection.BeginTransaction())
            {
                foreach (var command in new[] { _checkpoint, _fenced, _pin, _touch, _delete, _deleteIdle })
                {
                    command.Transaction = transaction;
                }

                for (var i = 0; i < batch.Count; i++)
                {
                    var (kind, r) = (batch[i].Kind, batch[i].Record);
                    results[i] = kind switch
                    {
                        JournalWriteKind.Checkpoint => Checkpoint(r),
                        JournalWriteKind.Pin => Run(_pin, r.SessionId, (object?)r.Owner ?? DBNull.Value, r.Epoch, r.UpdatedAt, r.LastAccess),
                        JournalWriteKind.Touch => Run(_touch, r.SessionId, r.LastAccess),
                        JournalWriteKind.Delete => Run(_delete, r.SessionId),
                        JournalWriteKind.DeleteIdle => Run(_deleteIdle, r.LastAccess),
                        _ => 0,
                    };
                    compact |= kind == JournalWriteKind.Compact;
                }

                transaction.Commit();
            }

            if (compact)
            {
                try
                {
                    using var command = _connection.CreateCommand();
                    command.CommandText = "PRAGMA incremental_vacuum; PRAGMA wal_checkpoint(TRUNCATE);";
                    command.ExecuteNonQuery();
                }
                catch (SqliteException ex)
                {
                    compactionFailure = ex;
                }
            }

            return results;
        }

        // Not stored: tell a checkpoint from an epoch the session has left from one merely not newer.
        private int Checkpoint(SessionRecord r)
        {
            if (Run(_checkpoint, r.SessionId, r.Version, r.State, (object?)r.Owner ?? DBNull.Value, r.Epoch, r.UpdatedAt, r.LastAccess) == 1)
            {
                return 1;
            }

            SetParameters(_fenced, r.SessionId);
            var stored = Convert.ToInt64(_fenced.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
            return stored > r.Epoch ? FencedResult : stored < r.Epoch ? DivergedResult : 0;
        }

        public void Dispose()
        {
            foreach (var command in new[] { _checkpoint, _fenced, _pin, _touch, _delete, _deleteIdle })
            {
                command.Dispose();
            }
        }

        private static int Run(SqliteCommand command, params object[] values)
        {
            SetParameters(command, values);
            return command.ExecuteNonQuery();
        }

        private static void SetParameters(SqliteCommand command, params object[] values)
        {
            for (var i = 0; i < values.Length; i++)
            {
                command.Parameters[i].Value = values[i];
            }
        }

        private SqliteCommand Prepare(string sql, params string[] parameters)
        {
            var command = _connection.CreateCommand();
            command.CommandText = sql;
            foreach (var name in parameters)
            {
                command.Parameters.Add(new SqliteParameter { ParameterName = name });
            }

            return command;
        }
    }
}

/// <summary>The journal cannot take or give a write now (queue full, disk error, failed integrity check).</summary>
internal sealed class JournalUnavailableException : Exception
{
    public JournalUnavailableException(string message) : base(message)
    {
    }

    public JournalUnavailableException(string message, Exception inner) : base(message, inner)
    {
    }
}
