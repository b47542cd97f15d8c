namespace Discovery.Model;

/// <summary>
/// One change to the visible view of the catalog, as a watcher sees it.
/// </summary>
/// <param name="Previous">The entry that was visible for this key just before the change, or null if the key was not visible
/// (new key, or its owner was hidden). Always equal to what a watcher that applied every earlier change holds for the key.</param>
/// <param name="Current">The stored entry for the key after the change. It is a tombstone for a delete; for a hide
/// it is the (still live) entry of the hidden node.</param>
/// <param name="Version">The catalog version after this change. Changes are numbered without gaps:
/// the first change after a snapshot has Version = snapshot.Version + 1, and each next one +1.</param>
/// <remarks>
/// A consumer needs one rule: if <see cref="Live"/> upsert <c>Current</c>, else remove <c>(Current.Table, Current.Key)</c>.
/// Removals come from a delete (Current.Tombstone), from the owner being hidden (<see cref="Hidden"/>, e.g. declared
/// dead by SWIM), or from a newer write by a hidden owner replacing a visible entry. When a node is un-hidden, its live
/// entries come back as ordinary additions (Previous null, Live true). Changes that touch nothing visible
/// (a tombstone for an unknown key, any write by a hidden owner over an invisible key, reaping) are not emitted.
/// </remarks>
public sealed record CatalogChange(CatalogEntry? Previous, CatalogEntry Current, long Version)
{
    /// <summary>True if Current's owner is hidden, so the key left the visible view even though Current may be live.</summary>
    public bool Hidden { get; init; }

    /// <summary>True if the change is a new version of the key (a local write or a merge); false if only its owner's
    /// visibility changed (hidden, or shown again with the version it had). A consumer that measures from
    /// <see cref="CatalogEntry.WrittenAt"/> does so only for written changes, or an old write would count again.</summary>
    public bool Written { get; init; }

    /// <summary>True if the key is visible after this change with Current as its value; false if it was removed.</summary>
    public bool Live => !Current.Tombstone && !Hidden;
}
