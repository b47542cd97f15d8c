namespace Discovery.Bench.Lb;

/// <summary>
/// One backend change: slot <see cref="Slot"/> of service <see cref="Service"/> goes from <see cref="From"/> to
/// <see cref="To"/>. Every layout applies the same change (the flat map rewrites one element; kube-proxy rewrites the
/// service's chains).
/// </summary>
internal sealed record BackendChange(int Service, int Slot, Backend From, Backend To)
{
    /// <summary>The slot every change rewrites (the reference scripts' "backend 3").</summary>
    public const int ChangedSlot = 3;

    /// <summary>
    /// Change <paramref name="index"/> of a run: even changes put a fresh replacement backend into slot 3 of a
    /// service, the next odd change puts the original back, so every pair leaves the table as loaded. Pairs walk
    /// the services with a stride (never the probe service), so changes do not hit one hot element.
    /// </summary>
    public static BackendChange Nth(ServiceSet set, int index)
    {
        var pair = index / 2;
        var service = (set.Count / 2 + pair * 97) % (set.Count - 1);
        var original = set.Backend(service, ChangedSlot);
        var replacement = ServiceSet.Replacement(pair);
        return index % 2 == 0
            ? new BackendChange(service, ChangedSlot, original, replacement)
            : new BackendChange(service, ChangedSlot, replacement, original);
    }

    /// <summary>True when this change puts a replacement in (false: it restores the loaded backend).</summary>
    public bool Replaces(ServiceSet set) => To != set.Backend(Service, Slot);
}
