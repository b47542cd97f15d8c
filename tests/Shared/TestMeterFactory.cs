using System.Diagnostics.Metrics;

namespace Discovery.Testing;

/// <summary>
/// An <see cref="IMeterFactory"/> for tests: its meters carry it as their scope (as the real factory's do), so a
/// <see cref="MeterRecorder"/> or exporter given this factory sees this test's instruments and no other test's.
/// </summary>
public sealed class TestMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
        lock (_meters) _meters.Add(meter);
        return meter;
    }

    public void Dispose()
    {
        lock (_meters)
        {
            foreach (var m in _meters) m.Dispose();
            _meters.Clear();
        }
    }
}
