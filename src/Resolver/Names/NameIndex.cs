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
        public List<(string Id, SrvTarget Target)>? Srv;
        public int ServiceMembers;                                  // endpoints that make this name a service
        public int Marks;                                           // endpoints that only mark the name as existing

        public bool IsEmpty => Endpoints.Count == 0 && (Ptr?.Count ?? 0) == 0 && (Srv?.Count ?? 0) == 0 && ServiceMembers == 0 && Marks == 0;
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
    private readonly Action<EndpointRecord, string>? _skipped;
    private NameTable _published = NameTable.Empty;

    public NameIndex(string clusterDomain, Action<EndpointRecord, string>? skipped = null)
    {
        _cd = clusterDomain.TrimEnd('.').ToLowerInvariant();
        _skipped = skipped;
        _shardEntries = Enumerable.Range(0, NameTable.ShardCount).Select(_ => new Dictionary<string, NameEntry>(StringComparer.Ordinal)).ToArray();
    }

    /// <summary>Adds the names of an endpoint (nothing for a disabled one).</summary>
    public void Add(EndpointRecord ep)
    {
        if (ep.Disabled) return;
        if (!_networkIndex.TryGetValue(ep.Network, out int net))
        {
            net = _networks.Count;
            _networks.Add(ep.Network);
            _networkIndex[ep.Network] = net;
        }
        Apply(ep, net, add: true);
    }

    /// <summary>Removes the names an earlier <see cref="Add"/> of the same record gave.</summary>
    public void Remove(EndpointRecord ep)
    {
        if (ep.Disabled || !_networkIndex.TryGetValue(ep.Network, out int net)) return;
        Apply(ep, net, add: false);
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
            string s = Lower(svc, null);
            Address(s);
            var service = At(s, net, ep, add);
            if (service is not null) service.ServiceMembers += add ? 1 : -1;
            Address("tasks." + s);
            foreach (var port in ep.Ports)
            {
                var acc = At(Lower($"_{port.Name}._{port.Protocol}.{svc}", null), net, ep, add);
                if (acc is null) continue;
                acc.Srv ??= [];
                if (add) acc.Srv.Add((ep.Id, new SrvTarget(port.Port, qualifiedWire, Bytes(ep.Address, AddressFamily.InterNetwork), Bytes(ep.Address6, AddressFamily.InterNetworkV6))));
                else acc.Srv.RemoveAll(x => x.Id == ep.Id && x.Target.Port == port.Port);
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
    private Acc? At(string lowerName, int net, EndpointRecord ep, bool add)
    {
        if (!_names.TryGetValue(lowerName, out var name))
        {
            if (!add) return null;
            var key = DnsName.TryEncode(lowerName);
            if (key is null) { _skipped?.Invoke(ep, lowerName); return null; }
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

    private static NetworkRecords ToRecords(Acc acc)
    {
        int v4Count = 0, v6Count = 0;
        foreach (var ep in acc.Endpoints)
        {
            if (ep.Address.AddressFamily == AddressFamily.InterNetwork) v4Count++; else v6Count++;
            if (ep.Address6 is { AddressFamily: AddressFamily.InterNetworkV6 }) v6Count++;
        }
        var v4 = v4Count == 0 ? [] : new byte[v4Count * 4];
        var v6 = v6Count == 0 ? [] : new byte[v6Count * 16];
        int p4 = 0, p6 = 0;
        foreach (var ep in acc.Endpoints)
        {
            if (ep.Address.AddressFamily == AddressFamily.InterNetwork) { ep.Address.TryWriteBytes(v4.AsSpan(p4), out _); p4 += 4; }
            else { ep.Address.TryWriteBytes(v6.AsSpan(p6), out _); p6 += 16; }
            if (ep.Address6 is { AddressFamily: AddressFamily.InterNetworkV6 } a6) { a6.TryWriteBytes(v6.AsSpan(p6), out _); p6 += 16; }
        }
        var ptr = acc.Ptr is null ? [] : acc.Ptr.OrderBy(p => p.Id, StringComparer.Ordinal).Select(p => p.Target).ToArray();
        var srv = acc.Srv is null ? [] : acc.Srv.OrderBy(s => s.Id, StringComparer.Ordinal).Select(s => s.Target).ToArray();
        return new NetworkRecords(acc.Network, v4, v6, ptr, srv, acc.ServiceMembers > 0);
    }

    private sealed class ById : IComparer<EndpointRecord>
    {
        public static readonly ById Instance = new();
        public int Compare(EndpointRecord? x, EndpointRecord? y) => string.CompareOrdinal(x!.Id, y!.Id);
    }

    private static byte[] Bytes(IPAddress? a, AddressFamily family)
        => a is not null && a.AddressFamily == family ? a.GetAddressBytes() : [];

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
