using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>How long a cold load took, and each kernel transaction in it (one entry for a one-transaction load).</summary>
internal sealed record LoadResult(TimeSpan Total, IReadOnlyList<TimeSpan> Transactions)
{
    public TimeSpan Longest => Transactions.Count == 0 ? Total : Transactions.Max();
}

/// <summary>
/// One way of putting N services × B backends into a namespace and changing one backend: the agent's own code
/// (lb-core) or an anchor (the nft CLI, kube-proxy's layout, a kept libnftables context). The measurements time
/// <see cref="Load"/> and <see cref="Change"/>; <see cref="Check"/> reads the kernel back with the nft CLI, so
/// a writer that does nothing cannot look fast.
/// </summary>
internal interface ILbWriter : IDisposable
{
    /// <summary>Row label.</summary>
    string Name { get; }

    /// <summary>What one change runs (a command line or the call), for the reproduce lines.</summary>
    string How { get; }

    /// <summary>What a cold load runs.</summary>
    string LoadHow { get; }

    LoadResult Load(NetNs ns, ServiceSet set);

    void Change(NetNs ns, ServiceSet set, BackendChange change);

    /// <summary>
    /// True when one <see cref="Change"/> reaches every namespace this writer loaded with the same service set (the
    /// agent's owner fans a catalog change out itself); part 2 then calls it once per fan-out, not once per sandbox.
    /// </summary>
    bool FansOut { get; }

    /// <summary>Lets go of a namespace before it is deleted (a kept socket would pin it, a fan-out would still reach it).</summary>
    void Release(NetNs ns);

    /// <summary>Throws unless the kernel in <paramref name="ns"/> sends slot <paramref name="slot"/> of the service to <paramref name="expected"/>.</summary>
    void Check(NetNs ns, ServiceSet set, int service, int slot, Backend expected);
}
