using System.Diagnostics;
using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>
/// The flat layout through the Platform's libnftables contexts (NftContexts: the path Nftables.Apply takes), in
/// process: nft text, parsed and encoded by libnftables, one transaction per call. With a context kept per namespace
/// this is the reference's "persistent context" row; with fewer kept contexts than namespaces (the agent keeps 8)
/// most calls pay a fresh context.
/// </summary>
internal sealed class KeptContextWriter(string name, string table, int maxContexts) : ILbWriter
{
    private readonly NftContexts _contexts = new(TimeProvider.System, TimeSpan.FromHours(1), maxContexts);

    public string Name { get; } = name;

    public string How => $"NftContexts.Run(ns, text) in-process, at most {maxContexts} kept contexts (text: delete element + add element)";

    public string LoadHow => "NftContexts.Run(ns, the whole flat layout as text): one transaction";

    public LoadResult Load(NetNs ns, ServiceSet set)
    {
        var text = FlatLayout.Full(table, set);
        var clock = Stopwatch.StartNew();
        _contexts.Run(ns, text);
        var took = clock.Elapsed;
        return new LoadResult(took, [took]);
    }

    public void Change(NetNs ns, ServiceSet set, BackendChange change) => _contexts.Run(ns, FlatLayout.Change(table, set, change));

    public void Check(NetNs ns, ServiceSet set, int service, int slot, Backend expected) => FlatCheck.Slot(ns, table, set, service, slot, expected);

    public bool FansOut => false;

    /// <summary>Frees the namespace's context (before the namespace is deleted, so its socket does not pin it).</summary>
    public void Release(NetNs ns) => _contexts.Release(ns);

    public void Dispose() => _contexts.Dispose();
}
