using System.Collections.Immutable;
using System.Net;
using CsCheck;
using Discovery.Model;
using Discovery.Overlay;
using Discovery.Overlay.Ipam;
using Xunit;

namespace Discovery.Tests.Indexing;

/// <summary>The index answers what a full decode of the catalog would, after any sequence of changes.</summary>
public class CatalogIndexTests
{
    const string Me = "n1";
    static readonly string[] Nets = ["web", "db", "ops"];

    static string Id(int i) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData([(byte)i]));

    static EndpointRecord Ep(int id, int net, int addr, string node) => new(
        Id(id), Nets[net % 2], $"c{id}", ImmutableArray<string>.Empty, null, IPAddress.Parse($"198.19.{net % 2}.{10 + addr}"), null,
        "02:42:c6:13:00:05", node, IPAddress.Parse("198.18.0.1"), node == Me ? $"/run/netns/x{id}" : "", node == Me ? "eth0" : "",
        ImmutableArray<ServicePort>.Empty, false);

    static NetworkSpec Net(int i) => new(Nets[i % 3], IPNetwork.Parse($"198.19.{i % 3}.0/24"), IPAddress.Parse($"198.19.{i % 3}.1"), 4097 + i % 3, 1450, 28);

    static BlockClaim Claim(int net, int block, string node) => new(Nets[net % 2], IPNetwork.Parse($"198.19.{net % 2}.{16 * (block % 4)}/28"), node);

    // One change, from four small numbers: own writes through Put/Delete, remote ones through Merge, hiding and leaving.
    static void Apply(Catalog catalog, IEndpointPlaces places, (int Kind, int A, int B, int C) op)
    {
        var (kind, a, b, c) = op;
        string remote = b % 2 == 0 ? "n2" : "n3";
        ulong lamport = Math.Max(1, catalog.Clock + (ulong)c) - (c == 0 ? 1UL : 0UL);
        switch (kind)
        {
            case 0:
                var mine = Ep(a, b, c, Me);
                places.Set(mine.Id, new EndpointPlace(mine.Netns, mine.Ifname));
                catalog.Put(Tables.Endpoints, mine.Id, RecordCodec.Encode(mine, c % 3 == 0 ? EndpointFormat.Legacy : EndpointFormat.Current));
                break;
            case 1: catalog.Delete(Tables.Endpoints, Id(a)); break;
            case 2: catalog.Merge(new CatalogEntry(Tables.Endpoints, Id(a), remote, lamport, false, RecordCodec.Encode(Ep(a, b, c, remote)))); break;
            case 3: catalog.Merge(new CatalogEntry(Tables.Endpoints, Id(a), remote, lamport, true, ReadOnlyMemory<byte>.Empty)); break;
            case 4:
                if (b % 2 == 0) catalog.Put(Tables.Networks, Net(a).Name, RecordCodec.Encode(Net(a)));
                else if (c % 2 == 0) catalog.Merge(new CatalogEntry(Tables.Networks, Net(a).Name, remote, lamport, false, RecordCodec.Encode(Net(a))));
                else catalog.Merge(new CatalogEntry(Tables.Networks, Net(a).Name, remote, lamport, true, ReadOnlyMemory<byte>.Empty));
                break;
            case 5:
                var claim = Claim(a, c, b % 3 == 0 ? Me : remote);
                var key = $"{claim.Network}/{claim.Block}/{claim.Node}"; // the earlier format's per-claimant key
                if (claim.Node == Me) catalog.Put(Tables.Blocks, key, RecordCodec.Encode(claim));
                else catalog.Merge(new CatalogEntry(Tables.Blocks, key, remote, lamport, c == 5, c == 5 ? ReadOnlyMemory<byte>.Empty : RecordCodec.Encode(claim)));
                break;
            case 6: catalog.SetNodeHidden("n2", b % 2 == 0); break;
            default:
                if (b % 2 == 0) catalog.RemoveOwner("n3");
                else catalog.Merge(new CatalogEntry(Tables.Endpoints, Id(a), remote, lamport, false, new byte[] { 2, 0x20, 0xFF }));
                break;
        }
    }

    static EndpointRecord Joined(EndpointRecord e, IEndpointPlaces places) =>
        e.Node == Me && places.Get(e.Id) is { } p ? e with { Netns = p.Netns, Ifname = p.Ifname } : e;

    static void AssertMatchesFullDecode(Catalog catalog, CatalogIndex index, IEndpointPlaces places)
    {
        var stored = catalog.AllEntries();
        Assert.Equal(CatalogReader.Networks(stored).OrderBy(n => n.Name, StringComparer.Ordinal), index.Networks());
        var all = CatalogReader.Endpoints(stored).Select(e => Joined(e, places)).OrderBy(e => e.Id).ToList();
        Assert.Equal(all, index.Endpoints(null, visibleOnly: false).OrderBy(e => e.Id));
        var visible = CatalogReader.Endpoints(catalog.Snapshot().Entries.Values).Select(e => Joined(e, places)).OrderBy(e => e.Id).ToList();
        Assert.Equal(visible, index.Endpoints(null, visibleOnly: true).OrderBy(e => e.Id));
        foreach (var e in all) Assert.Equal(e, index.Endpoint(e.Id));
        foreach (var net in Nets)
        {
            var onNet = all.Where(e => e.Network == net).ToList();
            Assert.Equal(onNet, index.Endpoints(net, visibleOnly: false).OrderBy(e => e.Id));
            var addresses = index.AddressesOn(net);
            Assert.Equal(onNet.Select(e => Ipv4.ToUInt(e.Address)).Distinct().Order(), addresses.Keys.Order());
            foreach (var (addr, holder) in addresses) Assert.Contains(holder, onNet.Where(e => Ipv4.ToUInt(e.Address) == addr));
            Assert.Equal(CatalogReader.Claims(stored).Where(c => c.Record.Network == net).Select(c => c.Entry.Key).Order(),
                index.Claims(net).Select(c => c.Entry.Key).Order());
            Assert.Equal(onNet.Count, index.EndpointsOn(net, 0).Count);
        }
        var local = all.Where(e => e.Node == Me).ToList();
        Assert.Equal(local, index.LocalEndpoints().OrderBy(e => e.Id));
        foreach (var e in local)
        {
            Assert.Equal(e, index.LocalEndpoint(e.Netns, e.Network));
            Assert.Contains(e.Network, index.LocalNetworksOf(e.Netns));
        }
        Assert.Equal(local.Select(e => e.Netns).Distinct().Order(), index.LocalNamespaces().Order());
    }

    static readonly Gen<(int, int, int, int)[]> Ops = Gen.Select(Gen.Int[0, 7], Gen.Int[0, 7], Gen.Int[0, 5], Gen.Int[0, 5]).Array[1, 60];

    [Fact]
    public void Index_matches_a_full_decode_after_every_change() =>
        Ops.Sample(ops =>
        {
            var catalog = new Catalog(Me);
            var places = new InMemoryEndpointPlaces();
            using var index = new CatalogIndex(catalog, Me, places);
            foreach (var op in ops)
            {
                Apply(catalog, places, op);
                AssertMatchesFullDecode(catalog, index, places);
            }
        }, iter: 300);

    [Fact]
    public void Index_built_on_a_catalog_that_already_holds_entries_matches_a_full_decode() =>
        Gen.Select(Ops, Ops).Sample((before, after) =>
        {
            var catalog = new Catalog(Me);
            var places = new InMemoryEndpointPlaces();
            foreach (var op in before) Apply(catalog, places, op);
            using var index = new CatalogIndex(catalog, Me, places);
            AssertMatchesFullDecode(catalog, index, places);
            foreach (var op in after) Apply(catalog, places, op);
            AssertMatchesFullDecode(catalog, index, places);
        }, iter: 200);

    [Fact]
    public void A_hidden_owners_network_and_addresses_stay_in_the_index()
    {
        var catalog = new Catalog(Me);
        using var index = new CatalogIndex(catalog, Me);
        catalog.SetNodeHidden("n2", true);
        // Arrives while its owner is hidden: not in the visible feed, but stored, so a network stays usable.
        catalog.Merge(new CatalogEntry(Tables.Networks, "web", "n2", 5, false, RecordCodec.Encode(Net(0))));
        var ep = Ep(1, 0, 1, "n2");
        catalog.Merge(new CatalogEntry(Tables.Endpoints, ep.Id, "n2", 6, false, RecordCodec.Encode(ep)));
        Assert.NotNull(index.Network("web"));
        Assert.True(index.AddressesOn("web").ContainsKey(Ipv4.ToUInt(ep.Address)));
        Assert.Empty(index.Endpoints("web", visibleOnly: true));
        // The node leaves while hidden: its tombstones reach the index even though nothing visible changed.
        catalog.RemoveOwner("n2");
        Assert.Null(index.Network("web"));
        Assert.Empty(index.AddressesOn("web"));
    }

    [Fact]
    public void An_own_endpoint_is_found_by_its_place_until_it_is_deleted()
    {
        var catalog = new Catalog(Me);
        var places = new InMemoryEndpointPlaces();
        using var index = new CatalogIndex(catalog, Me, places);
        var ep = Ep(1, 0, 1, Me);
        places.Set(ep.Id, new EndpointPlace(ep.Netns, ep.Ifname));
        catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(ep));
        Assert.Equal(ep, index.LocalEndpoint(ep.Netns, ep.Network));
        Assert.Equal([ep.Network], index.LocalNetworksOf(ep.Netns));
        catalog.Delete(Tables.Endpoints, ep.Id);
        Assert.Null(index.LocalEndpoint(ep.Netns, ep.Network));
        Assert.Empty(index.LocalNamespaces());
    }

    [Fact]
    public void Reads_cost_what_they_touch_not_the_cluster()
    {
        // 20,000 remote endpoints on one network: the local lookups an attach makes stay far below a full decode.
        var catalog = new Catalog(Me);
        for (int i = 0; i < 20_000; i++)
        {
            var address = new IPAddress([198, 19, (byte)(i / 250), (byte)(1 + i % 250)]);
            var id = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i)));
            var ep = Ep(0, 0, 0, "n2") with { Id = id, Address = address, Network = "big" };
            catalog.Merge(new CatalogEntry(Tables.Endpoints, id, "n2", (ulong)i + 1, false, RecordCodec.Encode(ep)));
        }
        using var index = new CatalogIndex(catalog, Me);
        var full = System.Diagnostics.Stopwatch.StartNew();
        var decoded = CatalogReader.Endpoints(catalog.AllEntries()).Count(e => e.Network == "big");
        full.Stop();
        var lookups = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 100; i++)
        {
            _ = index.LocalEndpoint("/run/netns/x", "big");
            _ = index.AddressesOn("big").ContainsKey((uint)i);
            _ = index.LocalNetworksOf("/run/netns/x");
        }
        lookups.Stop();
        Assert.Equal(20_000, decoded);
        // 100 rounds of lookups against one full decode: an O(cluster) lookup would make this at least 100x slower.
        Assert.True(lookups.Elapsed < full.Elapsed, $"100 lookup rounds took {lookups.Elapsed.TotalMilliseconds} ms, one full decode {full.Elapsed.TotalMilliseconds} ms");
    }
}
