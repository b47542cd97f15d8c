using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Discovery.Model;
using Discovery.Resolver.Wire;

namespace Discovery.Resolver.Names;

/// <summary>What one service gives one name on one network; merged with the endpoints' own names by <see cref="NameIndex"/>.</summary>
internal sealed class ServiceContribution
{
    /// <summary>Tasks whose addresses the name answers, sorted by id.</summary>
    public IReadOnlyList<EndpointRecord> Tasks = [];
    /// <summary>The service's VIP on this network, answered as an address.</summary>
    public IPAddress? Vip;
    public List<SrvTarget>? Srv;
    /// <summary>PTR target (wire form) for the reverse name of a VIP.</summary>
    public byte[]? Ptr;
    /// <summary>S or tasks.S: _PORT._PROTO under it gets NODATA rather than being forwarded.</summary>
    public bool IsService;
}

/// <summary>
/// The names of one service S, a pure function of its spec (if any) and its tasks per network:
/// <list type="bullet">
/// <item>vip mode, on a network of the spec with a VIP: S and S.NET(.CLUSTER) answer the VIP, the VIP's PTR answers
/// S.NET., and _PORT._PROTO.S answers one SRV per spec port with S.NET. as target (the VIP as glue);</item>
/// <item>otherwise (dnsrr, no spec yet, or a network the spec does not list): S answers the tasks, and
/// _PORT._PROTO.S one SRV per task and port;</item>
/// <item>tasks.S always answers the tasks, and with a spec _PORT._PROTO.tasks.S one SRV per task and port.</item>
/// </list>
/// "The tasks" are <see cref="ServiceTasks.Answerable"/>: healthy ones, or all when none is. Ports are the spec's
/// (port name, protocol, target) plus ports an endpoint declares itself (the only source before specs existed).
/// </summary>
internal static class ServiceNames
{
    /// <summary>Adds (name, network) → contribution to <paramref name="into"/> for service <paramref name="key"/> (lower case).</summary>
    /// <param name="networkName">Network name by index.</param>
    /// <param name="clusterDomain">Lower case, no trailing dot; empty for none.</param>
    public static void Compute(string key, ServiceSpec? spec, IReadOnlyDictionary<int, List<EndpointRecord>> tasksByNetwork,
        IReadOnlyList<int> networks, Func<int, string> networkName, string clusterDomain,
        Dictionary<(string Name, int Network), ServiceContribution> into)
    {
        string s = key + ".";
        foreach (int net in networks)
        {
            string netName = networkName(net);
            IReadOnlyList<EndpointRecord> all = tasksByNetwork.TryGetValue(net, out var list) ? list : [];
            var onSpec = spec is null ? null : FindNetwork(spec, netName);
            if (all.Count == 0 && onSpec is null) continue;
            // A copy: the index keeps mutating its own lists, and compares this one with the next computation.
            EndpointRecord[] tasks = [.. ServiceTasks.Answerable(all)];
            var vip = spec is { Mode: ServiceMode.Vip } && onSpec?.Vip is { } v ? v : null;

            var taskName = At(into, "tasks." + s, net);
            taskName.Tasks = tasks;
            taskName.IsService = true;
            var service = At(into, s, net);
            service.IsService = true;
            if (vip is not null)
            {
                string qualified = $"{key}.{netName}.";
                var qualifiedWire = DnsName.EncodeLower(qualified);
                service.Vip = vip;
                At(into, qualified, net).Vip = vip;
                if (clusterDomain.Length > 0) At(into, $"{qualified}{clusterDomain}.", net).Vip = vip;
                At(into, DnsName.ReverseName(vip), net).Ptr = qualifiedWire;
                foreach (var p in spec!.Ports)
                    Srv(into, $"_{p.Name}._{p.Protocol}.{s}", net).Add(new SrvTarget(p.Target, qualifiedWire,
                        Bytes(vip, AddressFamily.InterNetwork), Bytes(vip, AddressFamily.InterNetworkV6)));
            }
            else
            {
                service.Tasks = tasks;
            }
            if (tasks.Length == 0) continue;
            // Per port, the two SRV lists, found once rather than once per task.
            var specPorts = spec is null ? [] : new (ushort Port, List<SrvTarget> Tasks, List<SrvTarget>? Service)[spec.Ports.Length];
            for (int i = 0; i < specPorts.Length; i++)
            {
                var p = spec!.Ports[i];
                specPorts[i] = (p.Target, Srv(into, $"_{p.Name}._{p.Protocol}.tasks.{s}", net), vip is null ? Srv(into, $"_{p.Name}._{p.Protocol}.{s}", net) : null);
            }
            foreach (var t in tasks)
            {
                var parts = Parts(t);
                foreach (var (port, taskList, serviceList) in specPorts)
                {
                    var srv = new SrvTarget(port, parts.Target, parts.V4, parts.V6);
                    taskList.Add(srv);
                    serviceList?.Add(srv);
                }
                foreach (var p in t.Ports)
                {
                    if (spec is not null && HasPort(spec, p)) continue;
                    var srv = new SrvTarget(p.Port, parts.Target, parts.V4, parts.V6);
                    string name = $"_{p.Name}._{p.Protocol}.";
                    if (vip is null) Srv(into, name + s, net).Add(srv);
                    if (spec is not null) Srv(into, name + "tasks." + s, net).Add(srv);
                }
            }
        }
    }

    /// <summary>A task's SRV target (its qualified name, as its PTR answers) and glue, computed once per record:
    /// a service's names are recomputed on every change of any of its tasks.</summary>
    private sealed record TaskParts(byte[] Target, byte[] V4, byte[] V6);

    private static readonly ConditionalWeakTable<EndpointRecord, TaskParts> PartsCache = [];

    private static TaskParts Parts(EndpointRecord t) => PartsCache.GetValue(t, static t => new TaskParts(
        DnsName.EncodeLower($"{t.Name}.{t.Network}."), Bytes(t.Address, AddressFamily.InterNetwork), Bytes(t.Address6, AddressFamily.InterNetworkV6)));

    private static ServiceNetwork? FindNetwork(ServiceSpec spec, string network)
    {
        foreach (var n in spec.Networks) if (n.Network == network) return n;
        return null;
    }

    private static bool HasPort(ServiceSpec spec, ServicePort p)
    {
        foreach (var sp in spec.Ports)
            if (string.Equals(sp.Name, p.Name, StringComparison.OrdinalIgnoreCase) && sp.Protocol == p.Protocol) return true;
        return false;
    }

    private static ServiceContribution At(Dictionary<(string, int), ServiceContribution> into, string name, int net)
    {
        string lower = name.ToLowerInvariant();
        if (!into.TryGetValue((lower, net), out var c)) into[(lower, net)] = c = new ServiceContribution();
        return c;
    }

    private static List<SrvTarget> Srv(Dictionary<(string, int), ServiceContribution> into, string name, int net)
        => At(into, name, net).Srv ??= [];

    private static byte[] Bytes(IPAddress? a, AddressFamily family)
        => a is not null && a.AddressFamily == family ? a.GetAddressBytes() : [];
}
