using System.Diagnostics.CodeAnalysis;
using Microsoft.AspNetCore.Http;

namespace Baton.Backend;

/// <summary>
/// The <see cref="ISession"/> an app sees: the committed contents at the start of the request plus this
/// request's own changes, which are recorded so they can be applied to whatever is committed when the
/// request's checkpoint is taken.
/// </summary>
internal sealed class BatonSession(string id, IReadOnlyDictionary<string, byte[]> committed) : ISession
{
    private IReadOnlyDictionary<string, byte[]> _base = committed;
    private Dictionary<string, byte[]?>? _changes;
    private bool _cleared;

    public string Id { get; } = id;

    public bool IsAvailable => true;

    /// <summary>True when the request changed the session since its last checkpoint.</summary>
    public bool IsDirty => _cleared || _changes is { Count: > 0 };

    public IEnumerable<string> Keys => Current().Keys;

    public Task LoadAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    // The library commits when the response starts; an app's own commit call has nothing more to do.
    public Task CommitAsync(CancellationToken cancellationToken = default) => Task.CompletedTask;

    public bool TryGetValue(string key, [NotNullWhen(true)] out byte[]? value)
    {
        if (_changes is not null && _changes.TryGetValue(key, out var changed))
        {
            value = changed;
            return value is not null;
        }

        value = null;
        return !_cleared && _base.TryGetValue(key, out value);
    }

    public void Set(string key, byte[] value)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        (_changes ??= new(StringComparer.Ordinal))[key] = (byte[])value.Clone();
    }

    public void Remove(string key) => (_changes ??= new(StringComparer.Ordinal))[key] = null;

    public void Clear()
    {
        _cleared = true;
        _changes = null;
    }

    /// <summary>This request's changes applied to <paramref name="committed"/>.</summary>
    public Dictionary<string, byte[]> ApplyTo(IReadOnlyDictionary<string, byte[]> committed)
    {
        var result = _cleared ? new Dictionary<string, byte[]>(StringComparer.Ordinal) : new Dictionary<string, byte[]>(committed, StringComparer.Ordinal);
        foreach (var (key, value) in _changes ?? [])
        {
            if (value is null)
            {
                result.Remove(key);
            }
            else
            {
                result[key] = value;
            }
        }

        return result;
    }

    /// <summary>The keys this request set or removed (with a clear, every key <paramref name="committed"/> held too).</summary>
    public IEnumerable<string> Touched(IReadOnlyDictionary<string, byte[]> committed)
        => _cleared ? committed.Keys.Concat((_changes?.Keys ?? Enumerable.Empty<string>()).Where(key => !committed.ContainsKey(key))) : _changes?.Keys ?? Enumerable.Empty<string>();

    /// <summary>Marks the changes so far as committed into <paramref name="committed"/>; later changes start afresh.</summary>
    public void Committed(IReadOnlyDictionary<string, byte[]> committed)
    {
        _base = committed;
        _changes = null;
        _cleared = false;
    }

    /// <summary>Forgets this request's changes (a rolled-back change).</summary>
    public void Discard() => Committed(_base);

    private IReadOnlyDictionary<string, byte[]> Current() => IsDirty ? ApplyTo(_base) : _base;
}
