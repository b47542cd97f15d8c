using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Discovery.Testing;

/// <summary>
/// Reads what the instruments of one meter factory measured, for tests that check a metric in-process: the sum of a
/// counter's increments, the last value an observable instrument reported, or a histogram's observation count, per
/// instrument name and tag set. Only measurements made after it was created are seen.
/// </summary>
public sealed class MeterRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, double> _values = new(StringComparer.Ordinal);

    public MeterRecorder(IMeterFactory scope)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, scope)) listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    /// <summary>The value for <paramref name="instrument"/> with exactly <paramref name="tags"/> (in the order the
    /// instrument passes them); 0 if nothing was measured. Observable instruments are read now.</summary>
    public double Value(string instrument, params (string Name, string Value)[] tags)
    {
        _listener.RecordObservableInstruments();
        return _values.TryGetValue(Key(instrument, tags.Select(t => $"{t.Name}={t.Value}")), out var v) ? v : 0;
    }

    /// <summary>Whether <paramref name="instrument"/> has a series with exactly <paramref name="tags"/>.</summary>
    public bool Has(string instrument, params (string Name, string Value)[] tags)
    {
        _listener.RecordObservableInstruments();
        return _values.ContainsKey(Key(instrument, tags.Select(t => $"{t.Name}={t.Value}")));
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var parts = new List<string>(tags.Length);
        foreach (var t in tags) parts.Add($"{t.Key}={t.Value}");
        var key = Key(instrument.Name, parts);
        if (instrument.IsObservable) _values[key] = value;
        else if (instrument is Histogram<double> or Histogram<long>) _values.AddOrUpdate(key, 1, (_, n) => n + 1);
        else _values.AddOrUpdate(key, value, (_, n) => n + value);
    }

    private static string Key(string instrument, IEnumerable<string> tags) => instrument + "{" + string.Join(",", tags) + "}";

    public void Dispose() => _listener.Dispose();
}
