using System.Diagnostics.Metrics;
using Discovery.Daemon.Agent;
using Discovery.Gossip;
using Discovery.Gossip.Observability;
using Discovery.Gossip.Replication;
using Discovery.Model;
using Discovery.Resolver;
using Microsoft.Extensions.DependencyInjection;

namespace Discovery.Daemon.Metrics;

/// <summary>
/// The agent's metrics in one place: the meter factory every metric class creates its meter from, the exporter that
/// serves them on /metrics (started first, so it sees every instrument from its first measurement), and the process
/// metrics. One seam for the composition root: a DI container registers this as a singleton over its IMeterFactory.
/// </summary>
public sealed class DiscoveryMeters : IDisposable
{
    private readonly IDisposable? _owned;

    public DiscoveryMeters(IMeterFactory meters) : this(meters, null) { }

    private DiscoveryMeters(IMeterFactory meters, IDisposable? owned)
    {
        _owned = owned;
        Meters = meters;
        Exporter = new PrometheusExporter(meters);
        Process = new ProcessMetrics(meters);
    }

    /// <summary>With a meter factory of its own (Microsoft.Extensions.Diagnostics'), disposed with it.</summary>
    public static DiscoveryMeters Create()
    {
        var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        return new DiscoveryMeters(services.GetRequiredService<IMeterFactory>(), services);
    }

    public IMeterFactory Meters { get; }
    public PrometheusExporter Exporter { get; }
    public ProcessMetrics Process { get; }

    public AgentMetrics Agent(Catalog catalog) => new(Meters, catalog);
    public DnsMetrics Dns() => new(Meters);
    public GossipInstruments Gossip(GossipAgent agent, CatalogReplicator? replicator) => new(agent, Meters, replicator);

    public void Dispose()
    {
        Exporter.Dispose();
        _owned?.Dispose();
    }
}
