using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;

namespace Baton.Tests.Infrastructure;

/// <summary>Sums one counter of one gateway (its own meter, never another test's) where a tag has a value.</summary>
internal sealed class InstrumentCounter : IDisposable
{
    private readonly MeterListener _listener = new();
    private long _total;

    public InstrumentCounter(TestGateway gateway, string instrument, string tag, string value)
    {
        var factory = gateway.Services.GetRequiredService<IMeterFactory>();
        _listener.InstrumentPublished = (published, listener) =>
        {
            if (published.Name == instrument && ReferenceEquals(published.Meter.Scope, factory))
            {
                listener.EnableMeasurementEvents(published);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, measurement, tags, _) =>
        {
            foreach (var pair in tags)
            {
                if (pair.Key == tag && (string?)pair.Value == value)
                {
                    Interlocked.Add(ref _total, measurement);
                }
            }
        });
        _listener.Start();
    }

    public long Total => Interlocked.Read(ref _total);

    public void Dispose() => _listener.Dispose();
}
