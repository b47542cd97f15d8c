using System.Diagnostics;
using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>
/// The nft CLI: one `nft -f -` process per load or change, the text on its stdin, as kube-proxy runs it. Works for
/// the flat layout (anchor b) and for kube-proxy's layout (anchor c, its partial sync).
/// </summary>
internal sealed class NftCliWriter(string name, string table, bool kubeProxy) : ILbWriter
{
    private static readonly TimeSpan LoadTimeout = TimeSpan.FromMinutes(10);   // kube-proxy's layout at 10k: ~175 s here
    private static readonly TimeSpan ChangeTimeout = TimeSpan.FromSeconds(60);

    public string Name { get; } = name;

    public string How => $"nft -f - (stdin: {(kubeProxy ? "kube-proxy partial sync of the service: its chain + 10 endpoint chains rewritten, stale chain flushed" : "delete element + add element")})";

    public string LoadHow => $"nft -f - (stdin: the whole {(kubeProxy ? "kube-proxy" : "flat")} layout, one transaction)";

    public LoadResult Load(NetNs ns, ServiceSet set)
    {
        var text = kubeProxy ? KubeProxyLayout.Full(table, set) : FlatLayout.Full(table, set);
        var clock = Stopwatch.StartNew();
        Tool.Run(ns, LoadTimeout, "nft", ["-f", "-"], input: text);
        var took = clock.Elapsed;
        return new LoadResult(took, [took]);
    }

    public void Change(NetNs ns, ServiceSet set, BackendChange change) =>
        Tool.Run(ns, ChangeTimeout, "nft", ["-f", "-"], input: kubeProxy ? KubeProxyLayout.Change(table, set, change) : FlatLayout.Change(table, set, change));

    public void Check(NetNs ns, ServiceSet set, int service, int slot, Backend expected)
    {
        if (!kubeProxy)
        {
            FlatCheck.Slot(ns, table, set, service, slot, expected);
            return;
        }
        var replaced = expected != set.Backend(service, slot);
        var chain = Tool.Run(ns, ChangeTimeout, "nft", [KubeProxyLayout.ListService(table, service)]).Stdout;
        if (chain.Contains("goto " + KubeProxyLayout.ReplacementName(service), StringComparison.Ordinal) != replaced)
            throw new InvalidOperationException($"{ns}: kube-proxy table {table}: service-{service} {(replaced ? "does not jump" : "still jumps")} to the replacement endpoint chain:\n{chain.Trim()}");
    }

    public bool FansOut => false;

    public void Release(NetNs ns)
    {
        // Nothing kept: every change is its own process.
    }

    public void Dispose()
    {
    }
}
