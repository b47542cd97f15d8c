using Discovery.Resolver.Names;

namespace Discovery.Resolver.Serving;

/// <summary>
/// The networks one sandbox sees, resolved against a table snapshot. Re-resolved only when the table or the
/// network set changes, so a query reads one reference and does not allocate.
/// </summary>
public sealed class SandboxView
{
    private sealed record Resolved(NameTable Table, string[] Networks, int[] Indices);

    private string[] _networks;
    private Resolved? _resolved;

    public SandboxView(IEnumerable<string> networks) => _networks = networks.Distinct(StringComparer.Ordinal).ToArray();

    public IReadOnlyList<string> Networks => Volatile.Read(ref _networks);

    public void SetNetworks(IEnumerable<string> networks) => Volatile.Write(ref _networks, networks.Distinct(StringComparer.Ordinal).ToArray());

    /// <summary>The sorted network indices of this sandbox in <paramref name="table"/>.</summary>
    public int[] Resolve(NameTable table)
    {
        var r = Volatile.Read(ref _resolved);
        var networks = Volatile.Read(ref _networks);
        if (r is not null && ReferenceEquals(r.Table, table) && ReferenceEquals(r.Networks, networks)) return r.Indices;
        r = new Resolved(table, networks, table.ResolveNetworks(networks));
        Volatile.Write(ref _resolved, r);
        return r.Indices;
    }
}
