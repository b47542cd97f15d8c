using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text;

namespace Discovery.Daemon.Metrics;

/// <summary>
/// What one instrument has measured, per tag set, ready to render as one Prometheus family. Measurements arrive on any
/// thread; a known tag set is found without allocating, a new one is created once (label values rendered then).
/// </summary>
internal sealed class InstrumentFamily
{
    /// <summary>How a measurement changes its series.</summary>
    private enum Update { Add, Set, Observe }

    // Prometheus' client default, for histograms that give no bucket advice.
    private static readonly double[] DefaultBounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly ConcurrentDictionary<TagKey, MetricSeries> _series = new();
    private readonly object _createGate = new();
    private readonly Update _update;
    private readonly double[] _bounds = [];
    private readonly string[] _boundLabels = [];
    private readonly string _bucketName, _sumName, _countName;
    // Series in creation order, so a scrape reads like the last one; replaced (never mutated) under _createGate.
    private MetricSeries[] _ordered = [];
    private long _collecting;

    public InstrumentFamily(Instrument instrument)
    {
        Instrument = instrument;
        (Kind, _update) = instrument switch
        {
            Counter<long> or Counter<int> or Counter<double> => (MetricKind.Counter, Update.Add),
            ObservableCounter<long> or ObservableCounter<int> or ObservableCounter<double> => (MetricKind.Counter, Update.Set),
            Histogram<double> or Histogram<long> or Histogram<int> => (MetricKind.Histogram, Update.Observe),
            UpDownCounter<long> or UpDownCounter<int> or UpDownCounter<double> => (MetricKind.Gauge, Update.Add),
            _ => (MetricKind.Gauge, Update.Set), // ObservableGauge, ObservableUpDownCounter, Gauge
        };
        Name = PrometheusText.FamilyName(instrument.Name, Kind);
        _bucketName = Name + "_bucket";
        _sumName = Name + "_sum";
        _countName = Name + "_count";
        Help = instrument.Description ?? "";
        if (Kind == MetricKind.Histogram)
        {
            _bounds = instrument switch
            {
                Histogram<double> h => h.Advice?.HistogramBucketBoundaries?.ToArray(),
                Histogram<long> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
                Histogram<int> h => h.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray(),
                _ => null,
            } ?? DefaultBounds;
            _boundLabels = _bounds.Select(PrometheusText.Bound).ToArray();
        }
    }

    public Instrument Instrument { get; }
    public string Name { get; }
    public string Help { get; }
    public MetricKind Kind { get; }

    /// <summary>Observable instruments report every series they have at each scrape; a series not reported is gone.</summary>
    public bool IsObservable => Instrument.IsObservable;

    public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var key = new TagKey(tags);
        if (!_series.TryGetValue(key, out var series)) series = Create(key);
        switch (_update)
        {
            case Update.Add: ((ValueSeries)series).Add(value); break;
            case Update.Set: ((ValueSeries)series).Set(value); break;
            default: ((HistogramSeries)series).Observe(value); break;
        }
        if (IsObservable) Volatile.Write(ref series.Generation, Volatile.Read(ref _collecting));
    }

    /// <summary>Marks the start of a scrape's collection: what observable callbacks report next belongs to it.</summary>
    public void BeginCollect(long generation) => Volatile.Write(ref _collecting, generation);

    private MetricSeries Create(TagKey key)
    {
        lock (_createGate)
        {
            if (_series.TryGetValue(key, out var existing)) return existing;
            var names = new string[key.Count];
            var values = new string[key.Count];
            for (int i = 0; i < key.Count; i++)
            {
                names[i] = LabelName(key[i].Key);
                values[i] = key[i].Value?.ToString() ?? "";
            }
            MetricSeries series = Kind == MetricKind.Histogram ? new HistogramSeries(names, values, _bounds) : new ValueSeries(names, values);
            _series[key] = series;
            _ordered = [.. _ordered, series];
            return series;
        }
    }

    /// <summary>Writes this family's samples (not its header: families of one name share it).</summary>
    public void RenderSamples(StringBuilder sb)
    {
        var ordered = Volatile.Read(ref _ordered);
        long current = Volatile.Read(ref _collecting);
        bool stale = false;
        foreach (var s in ordered)
        {
            if (IsObservable && Volatile.Read(ref s.Generation) != current) { stale = true; continue; }
            if (s is HistogramSeries h) RenderHistogram(sb, h);
            else PrometheusText.Sample(sb, Name, s.LabelNames, s.LabelValues, ((ValueSeries)s).Value);
        }
        if (stale) DropStale(current);
    }

    private void RenderHistogram(StringBuilder sb, HistogramSeries h)
    {
        long cumulative = 0;
        for (int i = 0; i <= _bounds.Length; i++)
        {
            cumulative += h.Count(i);
            PrometheusText.Sample(sb, _bucketName, h.LabelNames, h.LabelValues, cumulative, "le", i < _bounds.Length ? _boundLabels[i] : "+Inf");
        }
        PrometheusText.Sample(sb, _sumName, h.LabelNames, h.LabelValues, h.Sum);
        // The count is the +Inf bucket, so the two agree even while observations race with the scrape.
        PrometheusText.Sample(sb, _countName, h.LabelNames, h.LabelValues, cumulative);
    }

    // Label sets an observable instrument stopped reporting (a network removed): forgotten, so memory stays bounded.
    private void DropStale(long current)
    {
        lock (_createGate)
        {
            var keep = new List<MetricSeries>(_ordered.Length);
            foreach (var (key, s) in _series)
                if (Volatile.Read(ref s.Generation) != current) _series.TryRemove(key, out _);
            foreach (var s in _ordered)
                if (Volatile.Read(ref s.Generation) == current) keep.Add(s);
            _ordered = keep.ToArray();
        }
    }

    private static string LabelName(string tag)
    {
        if (PrometheusText.IsValidName(tag, label: true)) return tag;
        var chars = tag.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
            if (!PrometheusText.IsValidName(i == 0 ? chars[i].ToString() : "a" + chars[i], label: true)) chars[i] = '_';
        return chars.Length == 0 ? "_" : new string(chars);
    }
}
