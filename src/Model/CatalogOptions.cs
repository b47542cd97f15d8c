namespace Discovery.Model;

/// <summary>Settings of one node's <see cref="Catalog"/>.</summary>
public sealed class CatalogOptions
{
    /// <summary>The furthest a remote Lamport time may lead this catalog's clock (issue 7: 2^32). A version further
    /// ahead is refused: honest nodes never jump that far, and accepting it would push every later write towards
    /// the end of the clock's range.</summary>
    public const ulong DefaultMaxLamportLead = 1UL << 32;

    /// <summary>No Lamport time at or above this is ever stored or written: a hard ceiling far below ulong.MaxValue,
    /// so Clock+1 can never wrap, whatever sequence of merges happens. 2^62 writes is beyond any real cluster.</summary>
    public const ulong LamportCeiling = 1UL << 62;

    /// <summary>How long a tombstone lives after its deletion time (the agent's reapWindowSeconds, DESIGN: 30 min).
    /// Every node reaps it once this has passed since the delete, and refuses it from then on.</summary>
    public TimeSpan TombstoneLifetime { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>True: an owner's entries are visible only once <see cref="Catalog.SetNodeHidden"/> showed the owner
    /// (SWIM saw it alive or suspect), and the local node is always shown. False: owners are shown unless hidden.</summary>
    public bool HideUnknownOwners { get; init; }

    /// <summary>See <see cref="DefaultMaxLamportLead"/>.</summary>
    public ulong MaxLamportLead { get; init; } = DefaultMaxLamportLead;

    /// <summary>Tables whose entries belong to the cluster more than to their writer (networks): shown whatever the
    /// state of their owner, since other hosts' containers use them after it died or left.</summary>
    public Func<string, bool>? SharedTable { get; init; }
}
