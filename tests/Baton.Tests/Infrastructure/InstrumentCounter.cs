using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Infrastructure;

/// <summary>
/// Sums one counter of one gateway or in-process backend (its own meter, never another test's): where a tag has a value, or every
/// measurement when no tag is named. With <c>increasesOnly</c>, an up-down counter's rises alone are summed
/// (requests started since, say): a fall recorded late for what ended before the listener began cannot hide them.
/// </summary>
internal sealed class InstrumentCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Lock _measured = new();
    private long _total;
    private long _count;
    private long _max;

    public InstrumentCounter(TestGateway gateway, string instrument, string? tag = null, string? value = null, bool increasesOnly = false)
        : this(gateway.Services, instrument, tag, value, increasesOnly)
    {
    }

    /// <summary>A counter of an in-process backend (the backend library's own meter).</summary>
    public InstrumentCounter(TestBackend backend, string instrument, string? tag = null, string? value = null, bool increasesOnly = false)
        : this(backend.Services, instrument, tag, value, increasesOnly)
    {
    }

    private InstrumentCounter(IServiceProvider services, string instrument, string? tag, string? value, bool increasesOnly)
    {
        var factory = services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (published, listener) =>
        {
            if (published.Name == instrument && ReferenceEquals(published.Meter.Scope, factory))
            {
                listener.EnableMeasurementEvents(published);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, measurement, tags, _) =>
        {
            if (increasesOnly && measurement < 0)
            {
                return;
            }

            if (tag is null)
            {
                lock (_measured)
                {
                    _total += measurement;
                    _count++;
                    _max = Math.Max(_max, measurement);
                }

                return;
            }

            foreach (var pair in tags)
            {
                if (pair.Key == tag && (string?)pair.Value == value)
                {
                    lock (_measured)
                    {
                        _total += measurement;
                    }
                }
            }
        });
        _listener.Start();
    }

    public long Total
    {
        get
        {
            lock (_measured)
            {
                return _total;
            }
        }
    }

    /// <summary>Measurements taken (untagged instruments): for a histogram, how many values it recorded.</summary>
    public long Count
    {
        get
        {
            lock (_measured)
            {
                return _count;
            }
        }
    }

    /// <summary>The largest measurement taken (untagged instruments).</summary>
    public long Max
    {
        get
        {
            lock (_measured)
            {
                return _max;
            }
        }
    }

    public void Dispose() => _listener.Dispose();
}
