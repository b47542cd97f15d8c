using System.Net;
using System.Net.Sockets;
using Discovery.Model;
using Discovery.Resolver.Wire;

namespace Discovery.Resolver.Names;

/// <summary>
/// The mutable side of the name tables, owned by one thread (the updater): which endpoints give each name on each
/// network. Adding or removing an endpoint touches only its own names; <see cref="Publish"/> then rebuilds only the
/// shards holding those names and shares every other shard with the previous <see cref="NameTable"/>. So a tombstone
/// costs microseconds, not a rebuild of every name.
/// </summary>
public sealed class NameIndex
{
    /// <summary>What one name collects on one network.</summary>
    private sealed class Acc(int network)
    {
        public readonly int Network = network;
        public readonly List<EndpointRecord> Endpoints = [];        // sorted by id, for stable answers
        public List<(string Id, byte[] Target)>? Ptr;
        public SortedDictionary<string, ServiceContribution>? Services; // by service key, for stable answers
        public int Marks;                                           // endpoints that only mark the name as existing

        public bool IsEmpty => Endpoints.Count == 0 && (Ptr?.Count ?? 0) == 0 && (Services?.Count ?? 0) == 0 && Marks == 0;
    }

    /// <summary>One service: its spec, if created, and its tasks per network (any health, never draining or host legs).</summary>
    private sealed class ServiceState
    {
        public ServiceSpec? Spec;
        public readonly Dictionary<int, List<EndpointRecord>> Tasks = [];   // each sorted by id
        public Dictionary<(string Name, int Network), ServiceContribution> Written = []; // as of the last publish

        public bool IsEmpty => Spec is null && Tasks.Count == 0;
    }

    private sealed class Name(byte[] key, int hash)
    {
        public readonly byte[] Key = key;
        public readonly int Hash = hash;
        public readonly List<Acc> PerNetwork = new(1);
    }

    private readonly string _cd;
    private readonly List<string> _networks = [];
    private readonly Dictionary<string, int> _networkIndex = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Name> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, NameEntry>[] _shardEntries;
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ServiceState> _services = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirtyServices = new(StringComparer.Ordinal);
    private readonly Action<EndpointRecord, string>? _skipped;
    private NameTable _published = NameTable.Empty;

    public NameIndex(string clusterDomain, Action<EndpointRecord, string>? skipped = null)
    {
        _cd = clusterDomain.TrimEnd('.').ToLowerInvariant();
        _skipped = skipped;
        _shardEntries = Enumerable.Range(0, NameTable.ShardCount).Select(_ => new Dictionary<string, NameEntry>(StringComparer.Ordinal)).ToArray();
    }

    /// <summary>Adds the names of an endpoint (nothing for a draining one or a host's leg).</summary>
    public void Add(EndpointRecord ep)
    {
        if (!ServiceTasks.IsTask(ep)) return;
        Apply(ep, NetworkIndex(ep.Network), add: true);
    }

    /// <summary>Removes the names an earlier <see cref="Add"/> of the same record gave.</summary>
    public void Remove(EndpointRecord ep)
    {
        if (!ServiceTasks.IsTask(ep) || !_networkIndex.TryGetValue(ep.Network, out int net)) return;
        Apply(ep, net, add: false);
    }

    /// <summary>Sets a service's spec (created or updated): its names follow at the next <see cref="Publish"/>.</summary>
    public void SetService(ServiceSpec spec)
    {
        foreach (var n in spec.Networks) NetworkIndex(n.Network);
        string key = spec.Name.ToLowerInvariant();
        Service(key, add: true)!.Spec = spec;
        _dirtyServices.Add(key);
    }

    /// <summary>Forgets a service's spec; tasks that still name it answer as tasks of a service without one.</summary>
    public void RemoveService(string name)
    {
        string key = name.ToLowerInvariant();
        if (Service(key, add: false) is not { } state) return;
        state.Spec = null;
        _dirtyServices.Add(key);
    }

    private ServiceState? Service(string key, bool add)
    {
        if (!_services.TryGetValue(key, out var state) && add) _services[key] = state = new ServiceState();
        return state;
    }

    private int NetworkIndex(string network)
    {
        if (!_networkIndex.TryGetValue(network, out int net))
        {
            net = _networks.Count;
            _networks.Add(network);
            _networkIndex[network] = net;
        }
        return net;
    }

    /// <summary>Every name an endpoint contributes, added or removed in one place so the two always agree.</summary>
    private void Apply(EndpointRecord ep, int net, bool add)
    {
        string qualified = Lower(ep.Name, ep.Network);
        if (DnsName.TryEncode(qualified, stackalloc byte[DnsHeader.MaxNameLength]) < 0)
        {
            if (add) _skipped?.Invoke(ep, qualified);
            return;
        }
        var qualifiedWire = DnsName.TryEncode(qualified)!;
        void Address(string name)
        {
            var acc = At(name, net, ep, add);
            if (acc is null) return;
            int i = acc.Endpoints.BinarySearch(ep, ById.Instance);
            if (add && i < 0) acc.Endpoints.Insert(~i, ep);
            else if (!add && i >= 0) acc.Endpoints.RemoveAt(i);
        }
        Address(Lower(ep.Name, null));
        foreach (var a in ep.Aliases) Address(Lower(a, null));
        Address(Lower(ep.ShortId, null));
        Address(qualified);
        if (_cd.Length > 0)
        {
            Address(string.Concat(qualified, _cd, "."));
            // The network under the cluster domain exists (an empty non-terminal): NODATA, not NXDOMAIN (RFC 8020).
            var apex = At(Lower(ep.Network, _cd), net, ep, add);
            if (apex is not null) apex.Marks += add ? 1 : -1;
        }
        if (ep.Service is { Length: > 0 } svc)
        {
            // The service's names depend on all its tasks and its spec: recomputed for this service only, at publish.
            string key = svc.ToLowerInvariant();
            var state = Service(key, add);
            if (state is not null)
            {
                if (!state.Tasks.TryGetValue(net, out var tasks) && add) state.Tasks[net] = tasks = [];
                if (tasks is not null)
                {
                    int i = tasks.BinarySearch(ep, ById.Instance);
                    if (add && i < 0) tasks.Insert(~i, ep);
                    else if (!add && i >= 0) tasks.RemoveAt(i);
                    if (tasks.Count == 0) state.Tasks.Remove(net);
                }
                _dirtyServices.Add(key);
            }
        }
        Ptr(DnsName.ReverseName(ep.Address));
        if (ep.Address6 is not null) Ptr(DnsName.ReverseName(ep.Address6));

        void Ptr(string reverse)
        {
            var acc = At(reverse, net, ep, add);
            if (acc is null) return;
            acc.Ptr ??= [];
            if (add) acc.Ptr.Add((ep.Id, qualifiedWire));
            else acc.Ptr.RemoveAll(x => x.Id == ep.Id);
        }
    }

    /// <summary>The accumulator of a name on a network, created when adding; marks the name dirty.</summary>
    private Acc? At(string lowerName, int net, EndpointRecord? ep, bool add)
    {
        if (!_names.TryGetValue(lowerName, out var name))
        {
            if (!add) return null;
            var key = DnsName.TryEncode(lowerName);
            if (key is null) { if (ep is not null) _skipped?.Invoke(ep, lowerName); return null; }
            _names[lowerName] = name = new Name(key, NameTable.Hash(key));
        }
        _dirty.Add(lowerName);
        foreach (var a in name.PerNetwork) if (a.Network == net) return a;
        if (!add) return null;
        var acc = new Acc(net);
        name.PerNetwork.Add(acc);
        name.PerNetwork.Sort((x, y) => x.Network.CompareTo(y.Network));
        return acc;
    }

    /// <summary>A snapshot with every change so far; shards without changes are shared with the previous one.</summary>
    public NameTable Publish(long version)
    {
        foreach (var key in _dirtyServices) RewriteService(key);
        _dirtyServices.Clear();
        if (_dirty.Count == 0 && _published.Version == version) return _published;
        var shards = (NameTable.Shard[])_published.Shards.Clone();
        var touched = new HashSet<int>();
        foreach (var lowerName in _dirty)
        {
            if (!_names.TryGetValue(lowerName, out var name)) continue;
            int shard = NameTable.ShardOf(name.Hash);
            touched.Add(shard);
            name.PerNetwork.RemoveAll(a => a.IsEmpty);
            if (name.PerNetwork.Count == 0)
            {
                _names.Remove(lowerName);
                _shardEntries[shard].Remove(lowerName);
                continue;
            }
            var records = new NetworkRecords[name.PerNetwork.Count];
            for (int i = 0; i < records.Length; i++) records[i] = ToRecords(name.PerNetwork[i]);
            _shardEntries[shard][lowerName] = new NameEntry(name.Hash, name.Key, records);
        }
        _dirty.Clear();
        foreach (int s in touched) shards[s] = new NameTable.Shard([.. _shardEntries[s].Values]);
        _published = new NameTable(_networks.ToArray(), shards, version);
        return _published;
    }

    /// <summary>Replaces what a service gave its names with what it gives now; only names that differ become dirty
    /// (a health flip of one task touches tasks.S, not the VIP's names).</summary>
    private void RewriteService(string key)
    {
        if (!_services.TryGetValue(key, out var state)) return;
        var now = new Dictionary<(string Name, int Network), ServiceContribution>();
        var networks = new SortedSet<int>(state.Tasks.Keys);
        if (state.Spec is not null) foreach (var n in state.Spec.Networks) networks.Add(NetworkIndex(n.Network));
        ServiceNames.Compute(key, state.Spec, state.Tasks, [.. networks], i => _networks[i], _cd, now);
        foreach (var (at, _) in state.Written)
        {
            if (now.ContainsKey(at)) continue;
            var acc = At(at.Name, at.Network, null, add: false);
            acc?.Services?.Remove(key);
        }
        foreach (var (at, contribution) in now)
        {
            if (state.Written.TryGetValue(at, out var before) && Same(before, contribution)) continue;
            var acc = At(at.Name, at.Network, null, add: true);
            if (acc is null) continue;
            (acc.Services ??= new SortedDictionary<string, ServiceContribution>(StringComparer.Ordinal))[key] = contribution;
        }
        state.Written = now;
        if (state.IsEmpty) _services.Remove(key);
    }

    private static bool Same(ServiceContribution a, ServiceContribution b)
    {
        if (a.IsService != b.IsService || !Equals(a.Vip, b.Vip) || !ReferenceEquals(a.Ptr, b.Ptr) && !(a.Ptr is not null && b.Ptr is not null && a.Ptr.AsSpan().SequenceEqual(b.Ptr))) return false;
        if (a.Tasks.Count != b.Tasks.Count || (a.Srv?.Count ?? 0) != (b.Srv?.Count ?? 0)) return false;
        // Records are replaced, never mutated, so reference equality tells an unchanged task.
        for (int i = 0; i < a.Tasks.Count; i++) if (!ReferenceEquals(a.Tasks[i], b.Tasks[i])) return false;
        for (int i = 0; i < (a.Srv?.Count ?? 0); i++)
        {
            SrvTarget x = a.Srv![i], y = b.Srv![i];
            if (x.Port != y.Port || !x.Target.AsSpan().SequenceEqual(y.Target) || !x.V4.AsSpan().SequenceEqual(y.V4) || !x.V6.AsSpan().SequenceEqual(y.V6)) return false;
        }
        return true;
    }

    private static NetworkRecords ToRecords(Acc acc)
    {
        // A name can be both an endpoint's own name and a service's (a container named like its service): one answer each.
        IReadOnlyList<EndpointRecord> endpoints = acc.Endpoints;
        var vips = new List<IPAddress>();
        bool isService = false;
        List<byte[]>? servicePtr = null;
        List<SrvTarget>? srvs = null;
        if (acc.Services is { Count: 1 } && acc.Endpoints.Count == 0)
        {
            // The common case, tasks.S or S alone: its tasks are sorted already.
            var c = acc.Services.Values.First();
            endpoints = c.Tasks;
            if (c.Vip is not null) vips.Add(c.Vip);
            if (c.Ptr is not null) servicePtr = [c.Ptr];
            if (c.Srv is not null) srvs = c.Srv;
            isService = c.IsService;
        }
        else if (acc.Services is { Count: > 0 })
        {
            var merged = new SortedDictionary<string, EndpointRecord>(StringComparer.Ordinal);
            foreach (var ep in acc.Endpoints) merged[ep.Id] = ep;
            foreach (var c in acc.Services.Values)
            {
                foreach (var t in c.Tasks) merged[t.Id] = t;
                if (c.Vip is not null) vips.Add(c.Vip);
                if (c.Ptr is not null) (servicePtr ??= []).Add(c.Ptr);
                if (c.Srv is not null) (srvs ??= []).AddRange(c.Srv);
                isService |= c.IsService;
            }
            endpoints = [.. merged.Values];
        }
        int v4Count = 0, v6Count = 0;
        foreach (var ep in endpoints)
        {
            if (ep.Address.AddressFamily == AddressFamily.InterNetwork) v4Count++; else v6Count++;
            if (ep.Address6 is { AddressFamily: AddressFamily.InterNetworkV6 }) v6Count++;
        }
        foreach (var vip in vips) if (vip.AddressFamily == AddressFamily.InterNetwork) v4Count++; else v6Count++;
        var v4 = v4Count == 0 ? [] : new byte[v4Count * 4];
        var v6 = v6Count == 0 ? [] : new byte[v6Count * 16];
        int p4 = 0, p6 = 0;
        void Put(IPAddress a)
        {
            if (a.AddressFamily == AddressFamily.InterNetwork) { a.TryWriteBytes(v4.AsSpan(p4), out _); p4 += 4; }
            else { a.TryWriteBytes(v6.AsSpan(p6), out _); p6 += 16; }
        }
        foreach (var ep in endpoints)
        {
            Put(ep.Address);
            if (ep.Address6 is { AddressFamily: AddressFamily.InterNetworkV6 } a6) Put(a6);
        }
        foreach (var vip in vips) Put(vip);
        var ptr = acc.Ptr is null ? [] : acc.Ptr.OrderBy(p => p.Id, StringComparer.Ordinal).Select(p => p.Target).ToArray();
        if (servicePtr is not null) ptr = [.. ptr, .. servicePtr];
        return new NetworkRecords(acc.Network, v4, v6, ptr, srvs is null ? [] : [.. srvs], isService);
    }

    private sealed class ById : IComparer<EndpointRecord>
    {
        public static readonly ById Instance = new();
        public int Compare(EndpointRecord? x, EndpointRecord? y) => string.CompareOrdinal(x!.Id, y!.Id);
    }

    /// <summary>"a" + "." (+ "b" + ".") lowercased in one allocation; a name that already ends in a dot keeps it.</summary>
    private static string Lower(string a, string? b)
    {
        if (b is null && a.EndsWith('.')) return a.ToLowerInvariant();
        int length = a.Length + 1 + (b is null ? 0 : b.Length + 1);
        return string.Create(length, (a, b), static (span, state) =>
        {
            int n = state.a.AsSpan().ToLowerInvariant(span);
            span[n++] = '.';
            if (state.b is null) return;
            n += state.b.AsSpan().ToLowerInvariant(span.Slice(n));
            span[n] = '.';
        });
    }
}
