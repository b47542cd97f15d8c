using System.Net;
using System.Text.Json;
using Discovery.Platform;
using Discovery.Tests.Support;
using Xunit;

namespace Discovery.Tests.Platform;

public sealed class LinkTests
{
    // VNIs from a high, random range: vxlan devices with the same VNI and port clash within a namespace.
    private static int RandomVni() => Random.Shared.Next(1_000_000, 16_000_000);

    private static string[] Flags(JsonElement link) => link.GetProperty("flags").EnumerateArray().Select(f => f.GetString()!).ToArray();

    [Fact]
    public void Veth_peer_is_created_directly_in_the_peer_namespace_with_the_mtu_on_both_ends()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var b = k.CreateNetNs("b");
        k.Netlink(a).CreateVeth("va", "vb", b, mtu: 1450);

        var va = Cli.Link(k.Name("a"), "va")!.Value;
        var vb = Cli.Link(k.Name("b"), "vb")!.Value;
        Assert.Equal("veth", va.GetProperty("linkinfo").GetProperty("info_kind").GetString());
        Assert.Equal(1450, va.GetProperty("mtu").GetInt32());
        Assert.Equal(1450, vb.GetProperty("mtu").GetInt32());
        Assert.Null(Cli.Link(k.Name("a"), "vb"));
        Assert.Equal("veth", k.Netlink(b).GetLink("vb")!.Kind);
    }

    [Fact]
    public void Veth_without_peer_namespace_keeps_both_ends_here()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        k.Netlink(a).CreateVeth("x0", "x1");
        Assert.NotNull(Cli.Link(k.Name("a"), "x0"));
        Assert.NotNull(Cli.Link(k.Name("a"), "x1"));
    }

    [Fact]
    public void Bridge_gets_its_mtu_and_a_veth_joins_and_leaves_it_as_master()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var nl = k.Netlink(a);
        nl.CreateBridge("br0", mtu: 1450);
        nl.CreateVeth("v0", "v1", mtu: 1450);
        nl.SetLink("v0", master: "br0", up: true);

        var v0 = Cli.Link(k.Name("a"), "v0")!.Value;
        Assert.Equal("br0", v0.GetProperty("master").GetString());
        Assert.Contains("UP", Flags(v0));
        var br = Cli.Link(k.Name("a"), "br0")!.Value;
        Assert.Equal("bridge", br.GetProperty("linkinfo").GetProperty("info_kind").GetString());
        Assert.Equal(1450, br.GetProperty("mtu").GetInt32());
        Assert.Equal(nl.GetLink("br0")!.Index, nl.GetLink("v0")!.MasterIndex);

        nl.SetLink("v0", master: "");
        Assert.False(Cli.Link(k.Name("a"), "v0")!.Value.TryGetProperty("master", out _));
        Assert.Equal(0, nl.GetLink("v0")!.MasterIndex);
    }

    [Fact]
    public void Vxlan_carries_vni_port_local_nolearning_proxy_and_mtu()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var vni = RandomVni();
        k.Netlink(a).CreateVxlan("vxlan0", new VxlanOptions(vni, Port: 4790, Local: IPAddress.Parse("198.18.0.9"), Mtu: 1450));

        var link = Cli.Link(k.Name("a"), "vxlan0")!.Value;
        var info = link.GetProperty("linkinfo");
        Assert.Equal("vxlan", info.GetProperty("info_kind").GetString());
        var data = info.GetProperty("info_data");
        Assert.Equal(vni, data.GetProperty("id").GetInt32());
        Assert.Equal(4790, data.GetProperty("port").GetInt32());
        Assert.Equal("198.18.0.9", data.GetProperty("local").GetString());
        Assert.False(data.GetProperty("learning").GetBoolean());
        Assert.True(data.GetProperty("proxy").GetBoolean());
        Assert.Equal(1450, link.GetProperty("mtu").GetInt32());
        Assert.Equal(vni, k.Netlink(a).GetLink("vxlan0")!.Vni);
    }

    [Fact]
    public void Vxlan_learning_and_proxy_follow_the_options()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        k.Netlink(a).CreateVxlan("vx1", new VxlanOptions(RandomVni(), Learning: true, Proxy: false));
        var data = Cli.Link(k.Name("a"), "vx1")!.Value.GetProperty("linkinfo").GetProperty("info_data");
        Assert.True(data.GetProperty("learning").GetBoolean());
        Assert.False(data.TryGetProperty("proxy", out var proxy) && proxy.GetBoolean());   // ip prints it only when on
        Assert.Equal(4789, data.GetProperty("port").GetInt32());
    }

    [Fact]
    public void Vxlan_made_in_the_host_moves_and_renames_into_a_namespace_in_one_request()
    {
        using var k = new KernelScope();
        var ov = k.CreateNetNs("ov");
        var hostName = k.Link("vx");
        var vni = RandomVni();
        k.Netlink().CreateVxlan(hostName, new VxlanOptions(vni, Mtu: 1450));
        Assert.NotNull(Cli.Link(null, hostName));

        k.Netlink().MoveLink(hostName, ov, "vxlan0");

        Assert.Null(Cli.Link(null, hostName));
        var moved = Cli.Link(k.Name("ov"), "vxlan0")!.Value;
        Assert.Equal(vni, moved.GetProperty("linkinfo").GetProperty("info_data").GetProperty("id").GetInt32());
        Assert.Equal(1450, moved.GetProperty("mtu").GetInt32());
    }

    [Fact]
    public void MoveLink_without_a_new_name_keeps_the_name()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var b = k.CreateNetNs("b");
        k.Netlink(a).CreateVeth("m0", "m1");
        k.Netlink(a).MoveLink("m1", b);
        Assert.Null(Cli.Link(k.Name("a"), "m1"));
        Assert.NotNull(Cli.Link(k.Name("b"), "m1"));
    }

    [Fact]
    public void SetLink_renames_and_sets_mtu_mac_and_up_together()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var nl = k.Netlink(a);
        nl.CreateVeth("s0", "s1");
        var mac = new byte[] { 0x02, 0x42, 0xc6, 0x13, 0x01, 0x02 };
        nl.SetLink("s0", newName: "eth0", mtu: 1400, mac: mac, up: true);

        Assert.Null(Cli.Link(k.Name("a"), "s0"));
        var eth0 = Cli.Link(k.Name("a"), "eth0")!.Value;
        Assert.Equal(1400, eth0.GetProperty("mtu").GetInt32());
        Assert.Equal("02:42:c6:13:01:02", eth0.GetProperty("address").GetString());
        Assert.Contains("UP", Flags(eth0));
        var info = nl.GetLink("eth0")!;
        Assert.Equal(mac, info.Mac);
        Assert.Equal(1400, info.Mtu);
        Assert.True(info.Up);
        Assert.Equal("veth", info.Kind);

        nl.SetLink("eth0", up: false);
        Assert.DoesNotContain("UP", Flags(Cli.Link(k.Name("a"), "eth0")!.Value));
        Assert.Equal(1400, nl.GetLink("eth0")!.Mtu);
    }

    [Fact]
    public void GetLinks_agrees_with_ip_link()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var nl = k.Netlink(a);
        nl.CreateBridge("br0");
        nl.CreateVeth("g0", "g1");
        var fromIp = Cli.Json("ip", "-n", k.Name("a"), "link", "show").EnumerateArray()
            .Select(l => (l.GetProperty("ifindex").GetInt32(), l.GetProperty("ifname").GetString()!, l.GetProperty("mtu").GetInt32()))
            .Order().ToArray();
        var fromUs = nl.GetLinks().Select(l => (l.Index, l.Name, l.Mtu)).Order().ToArray();
        Assert.Equal(fromIp, fromUs);
        Assert.Equal("", nl.GetLinks().Single(l => l.Name == "lo").Kind);
    }

    [Fact]
    public void GetLink_of_an_absent_link_is_null()
    {
        using var k = new KernelScope();
        Assert.Null(k.Netlink(k.CreateNetNs("a")).GetLink("nosuch0"));
    }

    [Fact]
    public void DeleteLink_removes_it_and_TryDeleteLink_reports_absence()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var nl = k.Netlink(a);
        nl.CreateBridge("br0");
        nl.DeleteLink("br0");
        Assert.Null(Cli.Link(k.Name("a"), "br0"));
        nl.CreateBridge("br1");
        Assert.True(nl.TryDeleteLink("br1"));
        Assert.False(nl.TryDeleteLink("br1"));
    }

    [Fact]
    public void Creating_an_existing_link_throws_EEXIST_naming_the_operation()
    {
        using var k = new KernelScope();
        var nl = k.Netlink(k.CreateNetNs("a"));
        nl.CreateBridge("br0");
        var ex = Assert.Throws<NetlinkException>(() => nl.CreateBridge("br0"));
        Assert.Equal(Errno.EEXIST, ex.Errno);
        Assert.Equal("link_create", ex.Operation);
        Assert.StartsWith("netlink link_create br0: File exists (EEXIST)", ex.Message);
    }

    [Fact]
    public void Deleting_an_absent_link_throws_ENODEV_naming_the_operation()
    {
        using var k = new KernelScope();
        var nl = k.Netlink(k.CreateNetNs("a"));
        var ex = Assert.Throws<NetlinkException>(() => nl.DeleteLink("nosuch0"));
        Assert.Equal(Errno.ENODEV, ex.Errno);
        Assert.Equal("link_delete", ex.Operation);
        Assert.StartsWith("netlink link_delete nosuch0: No such device (ENODEV)", ex.Message);
    }

    [Fact]
    public void Moving_or_setting_an_absent_link_throws_ENODEV()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var nl = k.Netlink(a);
        Assert.Equal("link_move", Assert.Throws<NetlinkException>(() => nl.MoveLink("nosuch0", NetNs.Host)).Operation);
        var set = Assert.Throws<NetlinkException>(() => nl.SetLink("nosuch0", up: true));
        Assert.Equal(("link_set", Errno.ENODEV), (set.Operation, set.Errno));
        nl.CreateVeth("e0", "e1");
        var master = Assert.Throws<NetlinkException>(() => nl.SetLink("e0", master: "nobridge"));
        Assert.Equal(Errno.ENODEV, master.Errno);
        Assert.Contains("nobridge", master.Message);
    }

    [Fact]
    public void Kernel_refusals_carry_the_extended_ack_text()
    {
        using var k = new KernelScope();
        var nl = k.Netlink(k.CreateNetNs("a"));
        nl.CreateBridge("br0");
        // An MTU below the minimum is refused by the core with an extack message.
        var ex = Assert.Throws<NetlinkException>(() => nl.SetLink("br0", mtu: 10));
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.False(string.IsNullOrEmpty(ex.KernelMessage));
        Assert.Contains(ex.KernelMessage!, ex.Message);
    }

    [Fact]
    public void Names_longer_than_15_bytes_are_rejected_before_reaching_the_kernel()
    {
        using var k = new KernelScope();
        var nl = k.Netlink(k.CreateNetNs("a"));
        Assert.Throws<ArgumentException>(() => nl.CreateBridge("a-name-too-long0"));
    }

    [Fact]
    public void Observer_sees_each_operation_and_its_result()
    {
        using var k = new KernelScope();
        var nl = k.Netlink(k.CreateNetNs("a"));
        var seen = new System.Collections.Concurrent.ConcurrentQueue<(string, bool)>();
        var previous = Rtnetlink.Observer;
        Rtnetlink.Observer = (op, ok) => seen.Enqueue((op, ok));
        try
        {
            nl.CreateBridge("br0");
            Assert.Throws<NetlinkException>(() => nl.CreateBridge("br0"));
        }
        finally
        {
            Rtnetlink.Observer = previous;
        }
        Assert.Contains(("link_create", true), seen);
        Assert.Contains(("link_create", false), seen);
    }
}
