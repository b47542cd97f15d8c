namespace Discovery.Model;

/// <summary>The last-writer-wins order between two versions of the same (table, key).</summary>
public static class CatalogOrder
{
    /// <summary>Positive if <paramref name="a"/> beats <paramref name="b"/>, negative if it loses, 0 if they are the same version.</summary>
    /// <remarks>Compares Lamport time, then Owner (ordinal), then — only reachable when one node reused a Lamport time,
    /// e.g. after a restart that lost its clock — tombstone beats value, then the greater Value bytes win, then the earlier deletion time (a leave tombstone
    /// that several nodes wrote at the same Lamport time, each stamping its own clock).
    /// Being a total order is what makes merge commutative, associative and idempotent.
    /// Table and Key are not compared: callers only compare versions of one key.</remarks>
    public static int Compare(CatalogEntry a, CatalogEntry b)
    {
        int c = a.Lamport.CompareTo(b.Lamport);
        if (c != 0) return c;
        c = string.CompareOrdinal(a.Owner, b.Owner);
        if (c != 0) return Math.Sign(c);
        c = a.Tombstone.CompareTo(b.Tombstone);
        if (c != 0) return c;
        c = Math.Sign(a.Value.Span.SequenceCompareTo(b.Value.Span));
        if (c != 0) return c;
        // Earlier wins; an unknown time (never stored, only compared in tests) loses to a known one.
        long ta = a.DeletedAt?.ToUnixTimeMilliseconds() ?? long.MaxValue, tb = b.DeletedAt?.ToUnixTimeMilliseconds() ?? long.MaxValue;
        return Math.Sign(tb.CompareTo(ta));
    }
}
