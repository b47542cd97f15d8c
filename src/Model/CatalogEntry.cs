namespace Discovery.Model;

/// <summary>One versioned catalog entry: the value a node wrote for (Table, Key), or its deletion.</summary>
/// <param name="Table">A <see cref="Tables"/> name.</param>
/// <param name="Key">Key inside the table.</param>
/// <param name="Owner">The node that wrote this version (for a leave tombstone: the node that left).</param>
/// <param name="Lamport">Lamport time of the write; with Owner, decides last-writer-wins (<see cref="CatalogOrder"/>).</param>
/// <param name="Tombstone">True if this version deletes the key. Value is then empty.</param>
/// <param name="Value">The encoded record (<see cref="RecordCodec"/>); empty for a tombstone.</param>
/// <remarks>Equality compares Value byte by byte (ReadOnlyMemory alone compares references), and DeletedAt; not WrittenAt.</remarks>
public sealed record CatalogEntry(string Table, string Key, string Owner, ulong Lamport, bool Tombstone, ReadOnlyMemory<byte> Value)
{
    /// <summary>For a tombstone: when it was written, by its writer's clock, in whole milliseconds (it travels with
    /// it, so every node reaps it at about the same time and none takes it back with a fresh age). Null for a live
    /// entry, and for a tombstone from a peer too old to send it (the catalog then stamps it when it stores it).</summary>
    public DateTimeOffset? DeletedAt { get; init; }

    /// <summary>When the owner wrote this version, by the owner's clock, in whole milliseconds: what
    /// discovery_lb_programming_latency_seconds and discovery_catalog_convergence_seconds measure from, like
    /// kube-proxy's last-change-trigger-time. Set by <see cref="Catalog.Put"/> and <see cref="Catalog.Delete"/>; it
    /// travels only in gossip entry messages (the origin time of a 0x22 message, which every release since the first
    /// gossip catalog reads), not in push-pull state or on disk, so a version learned any other way has none (null).
    /// Observation only: not part of equality, since two copies of one version may differ in whether it reached them.</summary>
    public DateTimeOffset? WrittenAt { get; init; }

    public bool Equals(CatalogEntry? other) =>
        other is not null
        && Lamport == other.Lamport && Tombstone == other.Tombstone
        && Table == other.Table && Key == other.Key && Owner == other.Owner
        && DeletedAt == other.DeletedAt
        && Value.Span.SequenceEqual(other.Value.Span);

    public override int GetHashCode() => HashCode.Combine(Table, Key, Owner, Lamport, Tombstone, Value.Length);

    /// <summary>A deletion time as the wire carries it: whole milliseconds, so a round trip keeps equality.</summary>
    public static DateTimeOffset WireTime(DateTimeOffset t) => DateTimeOffset.FromUnixTimeMilliseconds(t.ToUnixTimeMilliseconds());
}
