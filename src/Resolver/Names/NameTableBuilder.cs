using Discovery.Model;

namespace Discovery.Resolver.Names;

/// <summary>Builds a <see cref="NameTable"/> from a set of endpoint records in one go: a pure function, for tests and tools.</summary>
public static class NameTableBuilder
{
    /// <summary>
    /// The names of every enabled endpoint, per network: the container name, each alias, the short id,
    /// <c>name.network</c> and <c>name.network.clusterDomain</c>; for a service S also <c>S</c>, <c>tasks.S</c> and
    /// <c>_port._proto.S</c>; and PTR names for every address. Names that cannot be encoded are skipped and reported.
    /// </summary>
    public static NameTable Build(IEnumerable<EndpointRecord> endpoints, string clusterDomain, long version, Action<EndpointRecord, string>? skipped = null)
        => Build(endpoints, [], clusterDomain, version, skipped);

    /// <summary>As above, with service specs: see <see cref="ServiceNames"/> for what a spec changes.</summary>
    public static NameTable Build(IEnumerable<EndpointRecord> endpoints, IEnumerable<ServiceSpec> services, string clusterDomain, long version,
        Action<EndpointRecord, string>? skipped = null)
    {
        var index = new NameIndex(clusterDomain, skipped);
        foreach (var ep in endpoints) index.Add(ep);
        foreach (var spec in services) index.SetService(spec);
        return index.Publish(version);
    }
}
