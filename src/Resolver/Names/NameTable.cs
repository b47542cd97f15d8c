using Discovery.Resolver.Wire;

namespace Discovery.Resolver.Names;

/// <summary>An SRV answer: the port and the task's qualified name, with its addresses as glue.</summary>
public sealed class SrvTarget(ushort port, byte[] target, byte[] v4, byte[] v6)
{
    public ushort Port { get; } = port;
    /// <summary>Wire form of <c>name.network.</c>.</summary>
    public byte[] Target { get; } = target;
    /// <summary>IPv4 glue, 4 bytes or empty.</summary>
    public byte[] V4 { get; } = v4;
    /// <summary>IPv6 glue, 16 bytes or empty.</summary>
    public byte[] V6 { get; } = v6;
}

/// <summary>What one name means on one network.</summary>
public sealed class NetworkRecords(int network, byte[] v4, byte[] v6, byte[][] ptr, SrvTarget[] srv, bool isService)
{
    /// <summary>Index into <see cref="NameTable.Networks"/>.</summary>
    public int Network { get; } = network;
    /// <summary>IPv4 addresses, 4 bytes each, concatenated.</summary>
    public byte[] V4 { get; } = v4;
    /// <summary>IPv6 addresses, 16 bytes each, concatenated.</summary>
    public byte[] V6 { get; } = v6;
    /// <summary>PTR targets in wire form (for reverse names).</summary>
    public byte[][] Ptr { get; } = ptr;
    public SrvTarget[] Srv { get; } = srv;
    /// <summary>The name is a service, so <c>_port._proto.name</c> gets NODATA rather than being forwarded.</summary>
    public bool IsService { get; } = isService;
}

/// <summary>One name and its records on every network it exists on.</summary>
internal readonly struct NameEntry(int hash, byte[] key, NetworkRecords[] records)
{
    public readonly int Hash = hash;
    /// <summary>Lowercase wire form.</summary>
    public readonly byte[] Key = key;
    public readonly NetworkRecords[] Records = records;
}

/// <summary>
/// An immutable snapshot of every local name, keyed by lowercase wire name. It is split into shards by hash so that
/// a change rebuilds only the shards it touches and shares the rest with the previous snapshot. Published by
/// reference swap; lookups read plain arrays, take no lock and do not allocate.
/// </summary>
public sealed class NameTable
{
    internal const int ShardBits = 6;
    internal const int ShardCount = 1 << ShardBits;

    /// <summary>An open-addressing table of one shard's names.</summary>
    internal sealed class Shard
    {
        public static readonly Shard Empty = new([]);
        private readonly int[] _slots;          // entry index + 1, 0 = empty
        public readonly NameEntry[] Entries;

        public Shard(NameEntry[] entries)
        {
            Entries = entries;
            int size = 4;
            while (size < entries.Length * 2) size <<= 1;
            _slots = new int[size];
            for (int i = 0; i < entries.Length; i++)
            {
                int slot = entries[i].Hash & (size - 1);
                while (_slots[slot] != 0) slot = (slot + 1) & (size - 1);
                _slots[slot] = i + 1;
            }
        }

        public NetworkRecords[]? Lookup(ReadOnlySpan<byte> key, int hash)
        {
            int mask = _slots.Length - 1;
            int slot = hash & mask;
            while (true)
            {
                int e = _slots[slot];
                if (e == 0) return null;
                ref readonly var entry = ref Entries[e - 1];
                if (entry.Hash == hash && entry.Key.AsSpan().SequenceEqual(key)) return entry.Records;
                slot = (slot + 1) & mask;
            }
        }
    }

    private readonly Shard[] _shards;
    private readonly Dictionary<string, int> _networkIndex;

    public static NameTable Empty { get; } = new([], Enumerable.Repeat(Shard.Empty, ShardCount).ToArray(), 0);

    /// <summary>The catalog version this snapshot reflects; a listener uses the reference to tell that it changed.</summary>
    public long Version { get; }
    /// <summary>Network names by index; indices stay stable across snapshots of one updater.</summary>
    public IReadOnlyList<string> Networks { get; }
    public int Count { get; }

    internal NameTable(IReadOnlyList<string> networks, Shard[] shards, long version)
    {
        Version = version;
        Networks = networks;
        _shards = shards;
        _networkIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < networks.Count; i++) _networkIndex[networks[i]] = i;
        foreach (var s in shards) Count += s.Entries.Length;
    }

    internal Shard[] Shards => _shards;

    internal static int Hash(ReadOnlySpan<byte> key)
    {
        var h = new HashCode();
        h.AddBytes(key);
        return h.ToHashCode() & 0x7FFFFFFF;
    }

    internal static int ShardOf(int hash) => (hash >> (31 - ShardBits)) & (ShardCount - 1);

    /// <summary>The index of a network in this snapshot, or -1.</summary>
    public int NetworkIndex(string network) => _networkIndex.TryGetValue(network, out var i) ? i : -1;

    /// <summary>Maps network names to this snapshot's sorted indices; unknown networks are left out.</summary>
    public int[] ResolveNetworks(IEnumerable<string> networks)
        => networks.Select(NetworkIndex).Where(i => i >= 0).Distinct().Order().ToArray();

    /// <summary>Finds a lowercase wire name. The records cover every network; the caller filters by its own set.</summary>
    public NetworkRecords[]? Lookup(ReadOnlySpan<byte> lowerName)
    {
        int h = Hash(lowerName);
        return _shards[ShardOf(h)].Lookup(lowerName, h);
    }

    /// <summary>Every name in the table, dotted, for diagnostics and tests.</summary>
    public IEnumerable<string> Names()
    {
        foreach (var s in _shards)
            foreach (var e in s.Entries)
                yield return DnsName.ToDotted(e.Key);
    }
}
