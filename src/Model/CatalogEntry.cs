namespace Discovery.Model;

/// <summary>One versioned catalog entry: the value a node wrote for (Table, Key), or its deletion.</summary>
/// <param name="Table">A <see cref="Tables"/> name.</param>
/// <param name="Key">Key inside the table.</param>
/// <param name="Owner">The node that wrote this version (for a leave tombstone: the node that left).</param>
/// <param name="Lamport">Lamport time of the write; with Owner, decides last-writer-wins (<see cref="CatalogOrder"/>).</param>
/// <param name="Tombstone">True if this version deletes the key. Value is then empty.</param>
/// <param name="Value">The encoded record (<see cref="RecordCodec"/>); empty for a tombstone.</param>
/// <remarks>Equality compares Value byte by byte (ReadOnlyMemory alone compares references).</remarks>
public sealed record CatalogEntry(string Table, string Key, string Owner, ulong Lamport, bool Tombstone, ReadOnlyMemory<byte> Value)
{
    public bool Equals(CatalogEntry? other) =>
        other is not null
        && Lamport == other.Lamport && Tombstone == other.Tombstone
        && Table == other.Table && Key == other.Key && Owner == other.Owner
        && Value.Span.SequenceEqual(other.Value.Span);

    public override int GetHashCode() => HashCode.Combine(Table, Key, Owner, Lamport, Tombstone, Value.Length);
}
