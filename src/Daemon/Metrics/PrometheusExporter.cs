using System.Diagnostics.Metrics;
using System.Text;

namespace Discovery.Daemon.Metrics;

/// <summary>
/// Aggregates the measurements of the meters one <see cref="IMeterFactory"/> created (the agent's, not the framework's)
/// and renders them as Prometheus text on each scrape. Instrument names are the family names; descriptions are the HELP
/// text; tags are labels in the order the instrument passes them; histogram buckets come from the instrument's advice.
/// Measurements are thread-safe and, for a tag set seen before, allocation-free; scrapes are serialized.
/// </summary>
/// <remarks>
/// Start it before the instruments it should see are first used: a listener does not see measurements made before it
/// listened (metric classes record their zero series when they are constructed).
/// </remarks>
public sealed class PrometheusExporter : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Func<Meter, bool> _accept;
    private readonly object _familiesGate = new();
    private readonly object _scrapeGate = new();
    // Replaced, never mutated, under _familiesGate: scrapes read it without a lock.
    private InstrumentFamily[] _families = [];
    private long _generation;
    private int _lastLength = 4096;

    /// <summary>The prefix of the agent's meter names ("Discovery.Resolver", "Discovery.Gossip", ...).</summary>
    public const string MeterPrefix = "Discovery.";

    /// <summary>Exports the Discovery meters <paramref name="meters"/> created. A host's factory also makes the
    /// framework's meters (Kestrel, hosting), whose dotted instrument names are not Prometheus names: those stay out.</summary>
    public PrometheusExporter(IMeterFactory meters)
        : this(m => ReferenceEquals(m.Scope, meters) && m.Name.StartsWith(MeterPrefix, StringComparison.Ordinal)) { }

    /// <summary>Exports the meters <paramref name="accept"/> selects.</summary>
    public PrometheusExporter(Func<Meter, bool> accept)
    {
        _accept = accept;
        _listener.InstrumentPublished = OnPublished;
        _listener.MeasurementsCompleted = OnCompleted;
        _listener.SetMeasurementEventCallback<long>((_, v, tags, state) => ((InstrumentFamily)state!).Record(v, tags));
        _listener.SetMeasurementEventCallback<int>((_, v, tags, state) => ((InstrumentFamily)state!).Record(v, tags));
        _listener.SetMeasurementEventCallback<double>((_, v, tags, state) => ((InstrumentFamily)state!).Record(v, tags));
        _listener.SetMeasurementEventCallback<float>((_, v, tags, state) => ((InstrumentFamily)state!).Record(v, tags));
        _listener.Start();
    }

    private void OnPublished(Instrument instrument, MeterListener listener)
    {
        if (!_accept(instrument.Meter)) return;
        // A name Prometheus cannot parse would make the whole scrape unreadable: such an instrument is not exported.
        if (!PrometheusText.IsValidName(instrument.Name)) return;
        var family = new InstrumentFamily(instrument);
        lock (_familiesGate) _families = [.. _families, family];
        listener.EnableMeasurementEvents(instrument, family);
    }

    // The instrument's meter was disposed: its family leaves the output.
    private void OnCompleted(Instrument instrument, object? state)
    {
        lock (_familiesGate) _families = _families.Where(f => f != state).ToArray();
    }

    /// <summary>The text of one scrape (format 0.0.4): every family, with HELP and TYPE even before it has a series.</summary>
    public string Scrape()
    {
        lock (_scrapeGate)
        {
            long generation = ++_generation;
            var families = Volatile.Read(ref _families);
            foreach (var f in families)
                if (f.IsObservable) f.BeginCollect(generation);
            _listener.RecordObservableInstruments();
            var sb = new StringBuilder(_lastLength + _lastLength / 4);
            // Instruments of one name (from two meters of the factory) share one header, as one family.
            var written = new HashSet<string>(StringComparer.Ordinal);
            for (int i = 0; i < families.Length; i++)
            {
                var first = families[i];
                if (!written.Add(first.Name)) continue;
                PrometheusText.Header(sb, first.Name, first.Help, first.Kind);
                for (int j = i; j < families.Length; j++)
                    if (families[j].Name == first.Name && families[j].Kind == first.Kind) families[j].RenderSamples(sb);
            }
            _lastLength = sb.Length;
            return sb.ToString();
        }
    }

    public void Dispose() => _listener.Dispose();
}
