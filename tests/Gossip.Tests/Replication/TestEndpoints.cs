using System.Collections.Immutable;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Discovery.Model;

namespace Discovery.Gossip.Tests.Replication;

/// <summary>Valid endpoint records for replication tests: the replicator validates every entry at the edge, so tests
/// write what an agent writes. A test name maps to a stable endpoint id; <c>version</c> shows up in the record's name.</summary>
public static class TestEndpoints
{
    public static string Id(string name) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name)));

    public static byte[] Value(string name, string node, byte version = 1, EndpointFormat format = EndpointFormat.Current) => RecordCodec.Encode(new EndpointRecord(
        Id(name), "net", $"{name}-v{version}", ImmutableArray<string>.Empty, null,
        new IPAddress([198, 19, 0, (byte)(1 + version)]), null, "02:42:c6:13:00:02", node, new IPAddress([198, 18, 0, 1]),
        "", "eth0", ImmutableArray<ServicePort>.Empty, false), format);

    /// <summary>Writes endpoint <paramref name="name"/> owned by the catalog's node.</summary>
    public static CatalogEntry Put(Catalog catalog, string name, byte version = 1) =>
        catalog.Put(Tables.Endpoints, Id(name), Value(name, catalog.LocalNode, version));

    public static CatalogEntry? Delete(Catalog catalog, string name) => catalog.Delete(Tables.Endpoints, Id(name));

    public static CatalogEntry? Get(Catalog catalog, string name) => catalog.Get(Tables.Endpoints, Id(name));

    public static bool Has(CatalogSnapshot snapshot, string name) => snapshot.Entries.ContainsKey((Tables.Endpoints, Id(name)));

    /// <summary>The version written into a stored entry's record.</summary>
    public static int VersionOf(CatalogEntry entry)
    {
        var n = RecordCodec.DecodeEndpoint(entry.Value.Span, entry.Key).Name;
        return int.Parse(n[(n.LastIndexOf("-v", StringComparison.Ordinal) + 2)..]);
    }
}
