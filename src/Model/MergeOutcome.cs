namespace Discovery.Model;

/// <summary>What <see cref="Catalog.MergeEntry"/> did with a remote entry.</summary>
public enum MergeOutcome
{
    /// <summary>The stored version is the same or newer: nothing changed. Do not re-broadcast.</summary>
    Stale,

    /// <summary>The entry was newer and is now stored, but the visible view did not change
    /// (a tombstone for an invisible key, or an entry of a hidden owner). Worth re-broadcasting.</summary>
    Stored,

    /// <summary>The entry was newer, is stored, and changed the visible view (watchers got a change).</summary>
    Visible,

    /// <summary>A tombstone whose lifetime had already passed: not stored (every node reaps it by now), though it
    /// still removed an older live version of its key if this catalog held one. Do not re-broadcast.</summary>
    Expired,

    /// <summary>The Lamport time leads this catalog's clock by more than <see cref="CatalogOptions.MaxLamportLead"/>,
    /// or reaches <see cref="CatalogOptions.LamportCeiling"/>: refused, the clock does not move.</summary>
    TooFarAhead,
}
