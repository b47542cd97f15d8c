using System.Net;
using Discovery.Platform;
using Discovery.Tests.Support;
using Xunit;

namespace Discovery.Tests.Platform;

/// <summary>Neighbor and FDB entries on a vxlan0, singly and in pipelined batches.</summary>
public sealed class PeerTests : IDisposable
{
    private readonly KernelScope _k = new();
    private readonly Rtnetlink _nl;

    public PeerTests()
    {
        try
        {
            _nl = _k.Netlink(_k.CreateNetNs("ov"));
            _nl.CreateVxlan("vxlan0", new VxlanOptions(Random.Shared.Next(1_000_000, 16_000_000), Local: IPAddress.Parse("198.18.0.1"), Mtu: 1450));
            _nl.SetLink("vxlan0", up: true);
        }
        catch
        {
            _k.Dispose();
            throw;
        }
    }

    public void Dispose() => _k.Dispose();

    private static byte[] Mac(int a, int b) => [0x02, 0x42, 0xc6, 0x13, (byte)a, (byte)b];

    private static readonly byte[] Zero = new byte[6];

    private string Ns => _k.Name("ov");

    private (string Ip, string Mac, string[] State)[] IpNeigh() =>
        Cli.Json("ip", "-n", Ns, "neigh", "show", "dev", "vxlan0").EnumerateArray()
            .Select(n => (n.GetProperty("dst").GetString()!,
                n.TryGetProperty("lladdr", out var l) ? l.GetString()! : "",
                n.GetProperty("state").EnumerateArray().Select(s => s.GetString()!).ToArray()))
            .ToArray();

    private (string Mac, string Dst, string[] Flags, string State)[] BridgeFdb() =>
        Cli.Json("bridge", "-n", Ns, "fdb", "show", "dev", "vxlan0").EnumerateArray()
            .Select(f => (f.GetProperty("mac").GetString()!,
                f.TryGetProperty("dst", out var d) ? d.GetString()! : "",
                f.GetProperty("flags").EnumerateArray().Select(s => s.GetString()!).ToArray(),
                f.TryGetProperty("state", out var s) ? s.GetString()! : ""))
            .ToArray();

    [Fact]
    public void AddNeighbor_writes_a_permanent_entry_and_replaces_its_mac()
    {
        _nl.AddNeighbor("vxlan0", IPAddress.Parse("198.19.1.3"), Mac(1, 3));
        var entry = Assert.Single(IpNeigh());
        Assert.Equal(("198.19.1.3", "02:42:c6:13:01:03"), (entry.Ip, entry.Mac));
        Assert.Equal(["PERMANENT"], entry.State);

        _nl.AddNeighbor("vxlan0", IPAddress.Parse("198.19.1.3"), Mac(9, 9));
        Assert.Equal("02:42:c6:13:09:09", Assert.Single(IpNeigh()).Mac);

        var ours = Assert.Single(_nl.GetNeighbors("vxlan0"));
        Assert.Equal(IPAddress.Parse("198.19.1.3"), ours.Address);
        Assert.Equal(Mac(9, 9), ours.Mac);
        Assert.Equal(NeighborState.Permanent, ours.State);
        Assert.Equal(_nl.GetLink("vxlan0")!.Index, ours.IfIndex);
    }

    [Fact]
    public void DeleteNeighbor_removes_the_entry_then_reports_absence()
    {
        _nl.AddNeighbor("vxlan0", IPAddress.Parse("198.19.1.3"), Mac(1, 3));
        _nl.AddNeighbor("vxlan0", IPAddress.Parse("198.19.1.4"), Mac(1, 4));
        Assert.True(_nl.DeleteNeighbor("vxlan0", IPAddress.Parse("198.19.1.3")));
        Assert.False(_nl.DeleteNeighbor("vxlan0", IPAddress.Parse("198.19.1.3")));
        Assert.Equal("198.19.1.4", Assert.Single(IpNeigh()).Ip);
    }

    [Fact]
    public void AddFdb_writes_a_self_permanent_entry_and_replaces_its_destination()
    {
        _nl.AddFdb("vxlan0", Mac(1, 3), IPAddress.Parse("198.18.0.2"));
        var entry = Assert.Single(BridgeFdb());
        Assert.Equal(("02:42:c6:13:01:03", "198.18.0.2", "permanent"), (entry.Mac, entry.Dst, entry.State));
        Assert.Contains("self", entry.Flags);

        _nl.AddFdb("vxlan0", Mac(1, 3), IPAddress.Parse("198.18.0.3"));
        Assert.Equal("198.18.0.3", Assert.Single(BridgeFdb()).Dst);

        var ours = Assert.Single(_nl.GetFdb("vxlan0"));
        Assert.Equal(Mac(1, 3), ours.Mac);
        Assert.Equal(IPAddress.Parse("198.18.0.3"), ours.Destination);
        Assert.Equal(NeighborState.Permanent, ours.State);
    }

    [Fact]
    public void All_zero_mac_entries_append_one_flood_destination_per_vtep()
    {
        _nl.AddFdb("vxlan0", Zero, IPAddress.Parse("198.18.0.2"));
        _nl.AddFdb("vxlan0", Zero, IPAddress.Parse("198.18.0.3"));
        _nl.AddFdb("vxlan0", Zero, IPAddress.Parse("198.18.0.3"));   // again: still one entry for .3
        var flood = BridgeFdb().Where(f => f.Mac == "00:00:00:00:00:00").Select(f => f.Dst).Order().ToArray();
        Assert.Equal(["198.18.0.2", "198.18.0.3"], flood);
        Assert.Equal(["198.18.0.2", "198.18.0.3"], _nl.GetFdb("vxlan0").Select(f => f.Destination!.ToString()).Order());

        Assert.True(_nl.DeleteFdb("vxlan0", Zero, IPAddress.Parse("198.18.0.2")));
        Assert.Equal("198.18.0.3", Assert.Single(BridgeFdb()).Dst);
        Assert.True(_nl.DeleteFdb("vxlan0", Zero, IPAddress.Parse("198.18.0.3")));
        Assert.Empty(BridgeFdb());
        Assert.False(_nl.DeleteFdb("vxlan0", Zero, IPAddress.Parse("198.18.0.3")));
    }

    [Fact]
    public void DeleteFdb_without_destination_removes_the_mac()
    {
        _nl.AddFdb("vxlan0", Mac(1, 3), IPAddress.Parse("198.18.0.2"));
        Assert.True(_nl.DeleteFdb("vxlan0", Mac(1, 3)));
        Assert.Empty(BridgeFdb());
        Assert.False(_nl.DeleteFdb("vxlan0", Mac(1, 3)));
    }

    [Fact]
    public void Apply_programs_and_removes_hundreds_of_entries_in_one_batch()
    {
        const int n = 600;   // more than one pipelined window
        var ip = (int i) => IPAddress.Parse($"198.19.{1 + i / 250}.{1 + i % 250}");
        var adds = Enumerable.Range(0, n).SelectMany(i => new[]
        {
            new PeerOp(PeerOpKind.AddNeighbor, "vxlan0", ip(i), Mac(i / 250, i % 250)),
            new PeerOp(PeerOpKind.AddFdb, "vxlan0", IPAddress.Parse($"198.18.0.{2 + i % 3}"), Mac(i / 250, i % 250)),
        }).ToArray();
        _nl.Apply(adds);

        var neigh = IpNeigh();
        Assert.Equal(n, neigh.Length);
        Assert.All(neigh, e => Assert.Equal(["PERMANENT"], e.State));
        Assert.Contains(("198.19.3.100", "02:42:c6:13:02:63"), neigh.Select(e => (e.Ip, e.Mac)));
        var fdb = BridgeFdb();
        Assert.Equal(n, fdb.Length);
        Assert.Contains(("02:42:c6:13:02:63", "198.18.0.4"), fdb.Select(e => (e.Mac, e.Dst)));   // i = 599
        Assert.Equal(n, _nl.GetNeighbors("vxlan0").Count);
        Assert.Equal(n, _nl.GetFdb("vxlan0").Count);

        var deletes = adds.Select(op => op with { Kind = op.Kind == PeerOpKind.AddNeighbor ? PeerOpKind.DeleteNeighbor : PeerOpKind.DeleteFdb }).ToArray();
        _nl.Apply(deletes);
        Assert.Empty(IpNeigh());
        Assert.Empty(BridgeFdb());

        _nl.Apply(deletes);   // deleting what is already gone is not an error
    }

    [Fact]
    public void Apply_names_the_first_failing_op_and_its_position()
    {
        var ops = new List<PeerOp>
        {
            new(PeerOpKind.AddNeighbor, "vxlan0", IPAddress.Parse("198.19.1.3"), Mac(1, 3)),
            new(PeerOpKind.AddFdb, "vxlan0", IPAddress.Parse("198.18.0.2"), Mac(1, 3)),
            // An IPv6 VTEP on an IPv4 vxlan: the kernel answers EAFNOSUPPORT.
            new(PeerOpKind.AddFdb, "vxlan0", IPAddress.Parse("2001:db8::1"), Mac(1, 4)),
            new(PeerOpKind.AddNeighbor, "vxlan0", IPAddress.Parse("198.19.1.5"), Mac(1, 5)),
        };
        var ex = Assert.Throws<NetlinkException>(() => _nl.Apply(ops));
        Assert.Equal("fdb_add", ex.Operation);
        Assert.Equal(97, ex.Errno);   // EAFNOSUPPORT
        Assert.Contains("02:42:c6:13:01:04", ex.Message);
        Assert.Contains("(op 3 of 4)", ex.Message);
        // The ops before it were applied.
        Assert.Contains(IpNeigh(), e => e.Ip == "198.19.1.3");
        Assert.Contains(BridgeFdb(), e => e.Mac == "02:42:c6:13:01:03");
    }

    [Fact]
    public void Peer_ops_on_an_absent_link_throw_ENODEV_naming_the_op()
    {
        var ex = Assert.Throws<NetlinkException>(() => _nl.DeleteNeighbor("nosuch0", IPAddress.Parse("198.19.1.3")));
        Assert.Equal(("neigh_delete", Errno.ENODEV), (ex.Operation, ex.Errno));
        var batch = Assert.Throws<NetlinkException>(() => _nl.Apply([new PeerOp(PeerOpKind.AddFdb, "nosuch0", IPAddress.Parse("198.18.0.2"), Mac(1, 1))]));
        Assert.Equal(("fdb_add", Errno.ENODEV), (batch.Operation, batch.Errno));
    }

    [Fact]
    public void A_mac_that_is_not_six_bytes_is_rejected_before_reaching_the_kernel()
    {
        Assert.Throws<ArgumentException>(() => _nl.AddFdb("vxlan0", [1, 2, 3], IPAddress.Parse("198.18.0.2")));
        Assert.Empty(BridgeFdb());
    }
}
