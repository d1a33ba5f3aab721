using Microsoft.Data.Sqlite;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// Another writer holding a journal's write lock (<c>BEGIN IMMEDIATE</c>) until disposed: the gateway's writer
/// waits on it, so its commits are held back — the journal slow or stuck — and with a short
/// <c>Baton:Journal:LockTimeout</c> they fail, as on a failing disk: on any machine, without root.
/// </summary>
internal sealed class JournalLock : IDisposable
{
    private readonly SqliteConnection _connection;
    private bool _released;

    public JournalLock(string journalPath)
    {
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = journalPath, Pooling = false }.ToString());
        _connection.Open();
        Execute("BEGIN IMMEDIATE;");
    }

    /// <summary>Releases the lock (once; later calls do nothing).</summary>
    public void Dispose()
    {
        if (_released)
        {
            return;
        }

        _released = true;
        Execute("ROLLBACK;");
        _connection.Dispose();
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
