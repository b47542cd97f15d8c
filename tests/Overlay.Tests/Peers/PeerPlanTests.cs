using System.Collections.Immutable;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Discovery.Model;
using Discovery.Overlay;
using Discovery.Overlay.Peers;
using Discovery.Platform;
using Xunit;

namespace Discovery.Tests.Overlay.Peers;

/// <summary>The desired peer entries of a network, as a pure function of the endpoint records and the local node.</summary>
public sealed class PeerPlanTests
{
    private static readonly IPAddress V1 = IPAddress.Parse("198.18.0.1");
    private static readonly IPAddress V2 = IPAddress.Parse("198.18.0.2");
    private static readonly IPAddress V3 = IPAddress.Parse("198.18.0.3");

    internal static EndpointRecord Ep(string node, string ip, IPAddress vtep, string network = "web", string? id = null, string? ip6 = null, string? mac = null) =>
        new(Id: id ?? Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{node}/{network}/{ip}"))),
            Network: network, Name: "c-" + ip.Replace('.', '-'), Aliases: ImmutableArray<string>.Empty, Service: null,
            Address: IPAddress.Parse(ip), Address6: ip6 is null ? null : IPAddress.Parse(ip6),
            Mac: mac ?? MacAddress.Format(MacAddress.FromIPv4(IPAddress.Parse(ip))), Node: node, Vtep: vtep,
            Netns: "", Ifname: "eth0", Ports: ImmutableArray<ServicePort>.Empty, Disabled: false);

    private static string Mac(string ip) => MacAddress.Format(MacAddress.FromIPv4(IPAddress.Parse(ip)));

    private static FdbEntry Flood(IPAddress vtep) => new(FdbEntry.FloodMac, vtep);

    [Fact]
    public void A_network_without_a_local_endpoint_needs_no_entries()
    {
        var peers = PeerPlan.ForNetwork([Ep("h2", "198.19.1.3", V2), Ep("h3", "198.19.1.4", V3)], "h1", V1);
        Assert.True(peers.Entries.IsEmpty);
        Assert.Empty(peers.Skipped);
    }

    [Fact]
    public void A_remote_endpoint_gets_an_fdb_entry_to_its_vtep_a_neighbor_entry_and_a_flood_entry()
    {
        var peers = PeerPlan.ForNetwork([Ep("h1", "198.19.1.2", V1), Ep("h2", "198.19.1.3", V2)], "h1", V1);
        Assert.Equal(new HashSet<FdbEntry> { new(Mac("198.19.1.3"), V2), Flood(V2) }, peers.Entries.Fdb.ToHashSet());
        Assert.Equal(new HashSet<NeighborEntry> { new(IPAddress.Parse("198.19.1.3"), Mac("198.19.1.3")) }, peers.Entries.Neighbors.ToHashSet());
        Assert.Equal(1, peers.Entries.Peers);
    }

    [Fact]
    public void Local_endpoints_get_no_entries()
    {
        var peers = PeerPlan.ForNetwork([Ep("h1", "198.19.1.2", V1), Ep("h1", "198.19.1.5", V1)], "h1", V1);
        Assert.True(peers.Entries.IsEmpty);
    }

    [Fact]
    public void The_flood_list_has_one_entry_per_remote_vtep_with_endpoints()
    {
        var peers = PeerPlan.ForNetwork(
            [Ep("h1", "198.19.1.2", V1), Ep("h2", "198.19.1.3", V2), Ep("h2", "198.19.1.4", V2), Ep("h3", "198.19.1.5", V3)], "h1", V1);
        Assert.Equal([V2, V3], peers.Entries.FloodVteps.OrderBy(v => v.ToString()));
        Assert.Equal(3, peers.Entries.Peers);
        Assert.Equal(3, peers.Entries.Neighbors.Count);
    }

    [Fact]
    public void Desired_covers_exactly_the_networks_with_a_local_endpoint()
    {
        var all = new[]
        {
            Ep("h1", "198.19.1.2", V1, "web"), Ep("h2", "198.19.1.3", V2, "web"),
            Ep("h2", "198.19.2.3", V2, "db"), Ep("h3", "198.19.2.4", V3, "db"),
            Ep("h1", "198.19.3.2", V1, "solo"),
        };
        var desired = PeerPlan.Desired(all, "h1", V1);
        Assert.Equal(["solo", "web"], desired.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(1, desired["web"].Entries.Peers);
        Assert.True(desired["solo"].Entries.IsEmpty);
        Assert.All(desired["web"].Entries.Fdb, f => Assert.Equal(V2, f.Vtep));
    }

    [Fact]
    public void Endpoints_of_several_networks_are_rejected()
    {
        Assert.Throws<ArgumentException>(() => PeerPlan.ForNetwork([Ep("h1", "198.19.1.2", V1, "web"), Ep("h2", "198.19.2.3", V2, "db")], "h1", V1));
    }

    [Theory]
    [InlineData("127.0.0.1", "loopback")]
    [InlineData("0.0.0.0", "not a unicast")]
    [InlineData("239.1.1.1", "multicast")]
    [InlineData("198.18.0.1", "own underlay")]
    [InlineData("2001:db8::2", "address family")]
    public void A_remote_endpoint_whose_vtep_cannot_be_reached_is_skipped_with_the_reason(string vtep, string reason)
    {
        var remote = Ep("h2", "198.19.1.3", IPAddress.Parse(vtep));
        var peers = PeerPlan.ForNetwork([Ep("h1", "198.19.1.2", V1), remote], "h1", V1);
        Assert.True(peers.Entries.IsEmpty);
        var skipped = Assert.Single(peers.Skipped);
        Assert.Equal(remote, skipped.Endpoint);
        Assert.Contains(reason, skipped.Reason);
    }

    [Fact]
    public void Without_a_local_vtep_any_unicast_remote_vtep_is_used()
    {
        var peers = PeerPlan.ForNetwork([Ep("h1", "198.19.1.2", IPAddress.Loopback), Ep("h2", "198.19.1.3", IPAddress.Parse("2001:db8::2"))], "h1", null);
        Assert.Equal(1, peers.Entries.Peers);
    }

    [Fact]
    public void A_remote_endpoint_with_the_address_of_a_local_one_is_skipped()
    {
        var peers = PeerPlan.ForNetwork([Ep("h1", "198.19.1.3", V1), Ep("h2", "198.19.1.3", V2)], "h1", V1);
        Assert.True(peers.Entries.IsEmpty);
        Assert.Contains("already used by", Assert.Single(peers.Skipped).Reason);
    }

    [Fact]
    public void Remote_endpoints_sharing_an_address_resolve_to_the_lower_node_whatever_the_input_order()
    {
        var local = Ep("h1", "198.19.1.2", V1);
        var onH3 = Ep("h3", "198.19.1.9", V3);
        var onH2 = Ep("h2", "198.19.1.9", V2);
        var a = PeerPlan.ForNetwork([local, onH3, onH2], "h1", V1);
        var b = PeerPlan.ForNetwork([onH2, local, onH3], "h1", V1);
        Assert.Equal(a.Entries, b.Entries);
        Assert.Contains(new FdbEntry(Mac("198.19.1.9"), V2), a.Entries.Fdb);
        Assert.DoesNotContain(Flood(V3), a.Entries.Fdb);
        Assert.Equal(onH3, Assert.Single(a.Skipped).Endpoint);
    }

    [Fact]
    public void A_remote_endpoint_whose_mac_is_taken_is_skipped_even_with_a_free_address()
    {
        var peers = PeerPlan.ForNetwork(
            [Ep("h1", "198.19.1.2", V1), Ep("h2", "198.19.1.3", V2), Ep("h3", "198.19.1.4", V3, mac: Mac("198.19.1.3"))], "h1", V1);
        Assert.Equal(1, peers.Entries.Peers);
        Assert.Contains("MAC", Assert.Single(peers.Skipped).Reason);
    }

    [Fact]
    public void An_endpoint_with_an_ipv6_address_gets_a_neighbor_entry_for_each_address()
    {
        var peers = PeerPlan.ForNetwork([Ep("h1", "198.19.1.2", V1), Ep("h2", "198.19.1.3", V2, ip6: "fd00::3")], "h1", V1);
        Assert.Equal(2, peers.Entries.Neighbors.Count);
        Assert.All(peers.Entries.Neighbors, n => Assert.Equal(Mac("198.19.1.3"), n.Mac));
        Assert.Equal(1, peers.Entries.Peers);
    }

    [Fact]
    public void Upper_case_macs_are_programmed_in_canonical_form()
    {
        var peers = PeerPlan.ForNetwork([Ep("h1", "198.19.1.2", V1), Ep("h2", "198.19.1.3", V2, mac: "02:42:C6:13:01:03")], "h1", V1);
        Assert.Contains(new FdbEntry("02:42:c6:13:01:03", V2), peers.Entries.Fdb);
    }

    [Fact]
    public void A_hidden_node_drops_out_of_the_desired_entries_and_comes_back_when_shown()
    {
        var catalog = new Catalog("h1");
        catalog.Put(Tables.Endpoints, new string('a', 64), RecordCodec.Encode(Ep("h1", "198.19.1.2", V1, id: new string('a', 64))));
        foreach (var (node, ip, vtep) in new[] { ("h2", "198.19.1.3", V2), ("h3", "198.19.1.4", V3) })
        {
            var ep = Ep(node, ip, vtep);
            Assert.True(catalog.Merge(new CatalogEntry(Tables.Endpoints, ep.Id, node, 1, false, RecordCodec.Encode(ep))));
        }
        PeerSet Desired() => PeerPlan.Desired(CatalogReader.Endpoints(catalog.Snapshot().Entries.Values), "h1", V1)["web"].Entries;

        Assert.Equal([V2, V3], Desired().FloodVteps.OrderBy(v => v.ToString()));
        catalog.SetNodeHidden("h2", true);
        Assert.Equal([V3], Desired().FloodVteps);
        Assert.Equal(1, Desired().Peers);
        catalog.SetNodeHidden("h2", false);
        Assert.Equal(2, Desired().Peers);
    }

    [Fact]
    public void Kernel_entries_map_state_and_a_missing_destination()
    {
        var set = PeerSet.FromKernel(
            [new FdbInfo([2, 0x42, 1, 2, 3, 4], null, NeighborState.Permanent), new FdbInfo(new byte[6], V2, NeighborState.Reachable)],
            [new NeighborInfo(7, IPAddress.Parse("198.19.1.3"), [], NeighborState.Failed)]);
        Assert.Contains(new FdbEntry("02:42:01:02:03:04", IPAddress.Any), set.Fdb);
        Assert.Contains(new FdbEntry(FdbEntry.FloodMac, V2, Permanent: false), set.Fdb);
        Assert.Equal(new NeighborEntry(IPAddress.Parse("198.19.1.3"), "", Permanent: false), Assert.Single(set.Neighbors));
    }
}
