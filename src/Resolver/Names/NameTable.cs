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

/// <summary>
/// An immutable snapshot of every local name, keyed by lowercase wire name. Built off the hot path,
/// published by reference swap; lookups read plain arrays, take no lock and do not allocate.
/// </summary>
public sealed class NameTable
{
    private readonly int[] _slots;          // open addressing, entry index + 1, 0 = empty
    private readonly Entry[] _entries;
    private readonly byte[] _keys;          // every key, concatenated
    private readonly Dictionary<string, int> _networkIndex;

    private readonly struct Entry(int hash, int keyOffset, int keyLength, NetworkRecords[] records)
    {
        public readonly int Hash = hash;
        public readonly int KeyOffset = keyOffset;
        public readonly int KeyLength = keyLength;
        public readonly NetworkRecords[] Records = records;
    }

    public static NameTable Empty { get; } = new([], [], 0);

    /// <summary>Increases with every rebuild, so a listener can tell that its cached network set is stale.</summary>
    public long Version { get; }
    public IReadOnlyList<string> Networks { get; }
    public int Count => _entries.Length;

    internal NameTable(IReadOnlyList<string> networks, IReadOnlyList<(byte[] Key, NetworkRecords[] Records)> names, long version)
    {
        Version = version;
        Networks = networks;
        _networkIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < networks.Count; i++) _networkIndex[networks[i]] = i;
        int size = 16;
        while (size < names.Count * 2) size <<= 1;
        _slots = new int[size];
        _entries = new Entry[names.Count];
        _keys = new byte[names.Sum(n => n.Key.Length)];
        int off = 0;
        for (int i = 0; i < names.Count; i++)
        {
            var (key, records) = names[i];
            key.CopyTo(_keys, off);
            int h = Hash(key);
            _entries[i] = new Entry(h, off, key.Length, records);
            off += key.Length;
            int slot = h & (size - 1);
            while (_slots[slot] != 0) slot = (slot + 1) & (size - 1);
            _slots[slot] = i + 1;
        }
    }

    /// <summary>The index of a network in this snapshot, or -1.</summary>
    public int NetworkIndex(string network) => _networkIndex.TryGetValue(network, out var i) ? i : -1;

    /// <summary>Maps network names to this snapshot's sorted indices; unknown networks are left out.</summary>
    public int[] ResolveNetworks(IEnumerable<string> networks)
        => networks.Select(NetworkIndex).Where(i => i >= 0).Distinct().Order().ToArray();

    /// <summary>Finds a lowercase wire name. The records cover every network; the caller filters by its own set.</summary>
    public NetworkRecords[]? Lookup(ReadOnlySpan<byte> lowerName)
    {
        int h = Hash(lowerName);
        int mask = _slots.Length - 1;
        int slot = h & mask;
        while (true)
        {
            int e = _slots[slot];
            if (e == 0) return null;
            ref readonly var entry = ref _entries[e - 1];
            if (entry.Hash == h && _keys.AsSpan(entry.KeyOffset, entry.KeyLength).SequenceEqual(lowerName)) return entry.Records;
            slot = (slot + 1) & mask;
        }
    }

    /// <summary>Every name in the table, dotted, for diagnostics and tests.</summary>
    public IEnumerable<string> Names()
    {
        foreach (var e in _entries) yield return DnsName.ToDotted(_keys.AsSpan(e.KeyOffset, e.KeyLength));
    }

    private static int Hash(ReadOnlySpan<byte> key)
    {
        var h = new HashCode();
        h.AddBytes(key);
        return h.ToHashCode() & 0x7FFFFFFF;
    }
}
