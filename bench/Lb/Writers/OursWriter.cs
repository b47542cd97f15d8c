using System.Collections.Immutable;
using System.Diagnostics;
using System.Net;
using Discovery.Lb;
using Discovery.Lb.Rendering;
using Discovery.Lb.Sandboxes;
using Discovery.Model;
using Discovery.Platform;
using Microsoft.Extensions.Logging.Abstractions;

namespace Discovery.Bench.Lb;

/// <summary>
/// The agent's own load-balancer code path (src/Lb), called as the agent calls it: the catalog's service and its
/// endpoints go through <see cref="ServiceElements.For"/> (selection, slot filling) into
/// <see cref="SandboxTables.SetService"/>, which diffs them against the desired state and commits the element delta
/// to every sandbox on the network through its kept <see cref="NftElementWriter"/> (one nfnetlink batch each); a
/// cold load is <see cref="SandboxTables.Attach"/> (the table and its elements in chunked transactions). Each service
/// set is one network ("n" + its size), so every namespace loaded with a set is one sandbox on that network.
/// </summary>
internal sealed class OursWriter : ILbWriter
{
    private const string Node = "bench";
    private readonly LbMetrics _metrics = new();
    private readonly SandboxTables _tables;
    private readonly HashSet<int> _desired = [];                                  // sizes whose services are set
    private readonly Dictionary<(ulong, ulong), string> _sandboxes = [];          // namespace id → sandbox key

    public OursWriter() => _tables = new SandboxTables(_metrics, NullLogger.Instance);

    public string Name => "ours (lb-core SandboxTables + writer)";

    public string How => "ServiceElements.For(service, network, endpoints) + SandboxTables.SetService(network, service, elements): the element delta, one nfnetlink batch per sandbox on the network";

    public string LoadHow => $"SandboxTables.Attach(ns, ...): the table's rules in one libnftables transaction, then its elements through the element writer, {SandboxRuleset.ElementsPerTransaction:N0} per transaction";

    public bool FansOut => true;

    public LoadResult Load(NetNs ns, ServiceSet set)
    {
        SetDesired(set);
        var clock = Stopwatch.StartNew();
        _tables.Attach(ns, ns.ToString(), [Network(set)], new Dictionary<string, IPAddress>(), SandboxRules.None);
        var total = clock.Elapsed;
        _sandboxes[ns.Id] = ns.ToString();
        // Its transactions (one through libnftables, then the element writer's) are not reported one by one: part 3
        // times them from outside with a CommitProbe.
        return new LoadResult(total, []);
    }

    public void Change(NetNs ns, ServiceSet set, BackendChange change)
    {
        var elements = ServiceElements.For(Spec(set, change.Service), Network(set), Endpoints(set, change.Service, change.Replaces(set) ? change : null));
        if (_tables.SetService(Network(set), ServiceName(change.Service), elements) == 0)
            throw new InvalidOperationException($"ours: the change of {ServiceName(change.Service)} reached no sandbox");
    }

    public void Check(NetNs ns, ServiceSet set, int service, int slot, Backend expected)
    {
        // The VIP answers on the target port, and the backend is reached on that same port.
        var key = $"{set.Vip(service)} . tcp . {ServiceSet.Port} . {slot}";
        var output = Tool.Run(ns, TimeSpan.FromSeconds(60), "nft", [$"get element ip {SandboxRuleset.TableName} {LbElement.BackendsMap} {{ {key} }}"]).Stdout;
        if (!output.Contains($": {expected.Address} . {ServiceSet.Port}", StringComparison.Ordinal))
            throw new InvalidOperationException($"{ns}: table {SandboxRuleset.TableName} slot {key} does not map to {expected.Address}: {output.Trim()}");
    }

    public void Release(NetNs ns)
    {
        if (_sandboxes.Remove(ns.Id, out var key)) _tables.Detach(key);
    }

    public void Dispose()
    {
        _tables.Dispose();
        _metrics.Dispose();
    }

    // The desired state of a set's network, computed once: what the catalog would hold before any sandbox attaches.
    private void SetDesired(ServiceSet set)
    {
        if (!_desired.Add(set.Count)) return;
        for (var i = 0; i < set.Count; i++)
            _tables.SetService(Network(set), ServiceName(i), ServiceElements.For(Spec(set, i), Network(set), Endpoints(set, i, null)));
    }

    private static string Network(ServiceSet set) => $"n{set.Count}";

    private static string ServiceName(int service) => $"s{service}";

    private static ServiceSpec Spec(ServiceSet set, int service) =>
        new(ServiceName(service), [new ServiceNetwork(Network(set), set.Vip(service))], ServiceMode.Vip,
            [new ServicePortSpec("http", "tcp", ServiceSet.Port, 0, null)], PublishMode.Ingress, 0, BalanceMode.Random, 0, (uint)service);

    // The service's tasks: ids sort in slot order (selection orders by id and the random tier fills slots round
    // robin), and a replacement's id sorts right after the task it replaces, so it takes the same slot.
    private static List<EndpointRecord> Endpoints(ServiceSet set, int service, BackendChange? replace)
    {
        var list = new List<EndpointRecord>(set.BackendsPerService);
        for (var k = 0; k < set.BackendsPerService; k++)
        {
            var id = $"{service:D5}-{k:D3}";
            var address = set.Backend(service, k).Address;
            if (replace is not null && k == replace.Slot)
            {
                id += "r" + replace.To.Address;
                address = replace.To.Address;
            }
            list.Add(new EndpointRecord(id, Network(set), id, ImmutableArray<string>.Empty, ServiceName(service), address, null,
                "02:42:c6:13:00:01", Node, IPAddress.Parse("198.18.0.1"), "", "eth0", ImmutableArray<ServicePort>.Empty, Disabled: false));
        }
        return list;
    }
}
