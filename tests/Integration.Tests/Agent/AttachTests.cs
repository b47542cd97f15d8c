using System.Text.Json;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Agent;

[Collection("agent")]
public sealed class AttachTests : IDisposable
{
    private readonly AgentUnderTest _a = new();

    public AttachTests()
    {
        // xunit does not call Dispose when the constructor throws: clean up here.
        try { _a.Start(); }
        catch { _a.Dispose(); throw; }
    }

    public void Dispose() => _a.Dispose();

    [Fact]
    public void Network_create_builds_a_namespace_with_br0_and_vxlan0()
    {
        var net = _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24", "--vni", "4200");
        Assert.Equal("198.19.1.1", net.GetProperty("gateway").GetString());
        Assert.Equal(1450, net.GetProperty("mtu").GetInt32());
        var ns = _a.OverlayNs("web");
        var br = KernelView.Link(ns, "br0")!.Value;
        Assert.Equal(1450, br.GetProperty("mtu").GetInt32());
        Assert.Contains("198.19.1.1/24", KernelView.Addresses(ns, "br0"));
        var vx = KernelView.Link(ns, "vxlan0")!.Value;
        var info = vx.GetProperty("linkinfo").GetProperty("info_data");
        Assert.Equal(4200, info.GetProperty("id").GetInt32());
        Assert.False(info.GetProperty("learning").GetBoolean());
        Assert.True(info.GetProperty("proxy").GetBoolean());
        Assert.Equal(1450, vx.GetProperty("mtu").GetInt32());
        Assert.Equal("br0", vx.GetProperty("master").GetString());
        Assert.Equal("0", Sh.Run("ip", "netns", "exec", ns, "sysctl", "-n", "net.bridge.bridge-nf-call-iptables").Trim());
    }

    [Fact]
    public void Attach_gives_the_namespace_eth0_with_ip_mac_mtu_and_detach_removes_it()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var ep = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1", "--alias", "front");
        var ip = ep.GetProperty("ip").GetString()!;
        Assert.StartsWith("198.19.1.", ip);
        Assert.Equal("eth0", ep.GetProperty("ifname").GetString());
        Assert.Equal(64, ep.GetProperty("id").GetString()!.Length);
        var bytes = System.Net.IPAddress.Parse(ip).GetAddressBytes();
        Assert.Equal($"02:42:{bytes[0]:x2}:{bytes[1]:x2}:{bytes[2]:x2}:{bytes[3]:x2}", ep.GetProperty("mac").GetString());

        var eth0 = KernelView.Link(c1, "eth0")!.Value;
        Assert.Equal(ep.GetProperty("mac").GetString(), eth0.GetProperty("address").GetString());
        Assert.Equal(1450, eth0.GetProperty("mtu").GetInt32());
        Assert.Contains($"{ip}/24", KernelView.Addresses(c1, "eth0"));
        Assert.Contains("UP", KernelView.Link(c1, "lo")!.Value.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        var hostEnd = "ve" + ep.GetProperty("id").GetString()![..11];
        Assert.Equal("br0", KernelView.Link(_a.OverlayNs("web"), hostEnd)!.Value.GetProperty("master").GetString());
        // Overlays are IPv4: neither the bridge port (no per-port link-local route for the kernel to walk on every
        // attach) nor eth0 (no DAD/RS/MLD multicast flooded to every container) has IPv6; lo keeps it.
        Assert.Equal("1", Sh.Run("ip", "netns", "exec", _a.OverlayNs("web"), "sysctl", "-n", $"net.ipv6.conf.{hostEnd}.disable_ipv6").Trim());
        Assert.Equal("1", Sh.Run("ip", "netns", "exec", c1, "sysctl", "-n", "net.ipv6.conf.eth0.disable_ipv6").Trim());
        Assert.Equal("0", Sh.Run("ip", "netns", "exec", c1, "sysctl", "-n", "net.ipv6.conf.lo.disable_ipv6").Trim());
        // An unanswered ARP is asked again every 100 ms for 3 s, not every 1 s (OverlayKernel.NeighborRetry says why).
        foreach (var (ns, ifname) in new[] { (c1, "eth0"), (_a.OverlayNs("web"), "br0") })
        {
            Assert.Equal("100", Sh.Run("ip", "netns", "exec", ns, "sysctl", "-n", $"net.ipv4.neigh.{ifname}.retrans_time_ms").Trim());
            Assert.Equal("30", Sh.Run("ip", "netns", "exec", ns, "sysctl", "-n", $"net.ipv4.neigh.{ifname}.mcast_solicit").Trim());
        }
        Assert.Equal("1000", Sh.Run("ip", "netns", "exec", c1, "sysctl", "-n", "net.ipv4.neigh.lo.retrans_time_ms").Trim());

        var gone = _a.CliJson("detach", "--netns", c1, "--network", "web");
        Assert.Equal(ep.GetProperty("id").GetString(), gone.GetProperty("id").GetString());
        Assert.Null(KernelView.Link(c1, "eth0"));
        Assert.Empty(_a.CliJson("endpoints", "--json").EnumerateArray());
        // The veth itself is deleted just after the detach answers (a deletion waits out the kernel's RCU grace period).
        Assert.True(Eventually.TrueBlocking(() => KernelView.Link(_a.OverlayNs("web"), hostEnd) is null, TimeSpan.FromSeconds(5)),
            "the detached endpoint's veth is deleted");
        Assert.Null(KernelView.Link(c1, "vr" + ep.GetProperty("id").GetString()![..11]));
    }

    [Fact]
    public void A_namespace_attached_again_right_after_a_detach_gets_a_fresh_eth0()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var first = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        _a.CliJson("detach", "--netns", c1, "--network", "web");
        // No wait: the old veth may still be on its way out, but it no longer holds the name eth0.
        var second = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        Assert.NotEqual(first.GetProperty("id").GetString(), second.GetProperty("id").GetString());
        var eth0 = KernelView.Link(c1, "eth0")!.Value;
        Assert.Equal(second.GetProperty("mac").GetString(), eth0.GetProperty("address").GetString());
        Assert.Contains("UP", eth0.GetProperty("flags").EnumerateArray().Select(f => f.GetString()));
        var oldHostEnd = "ve" + first.GetProperty("id").GetString()![..11];
        Assert.True(Eventually.TrueBlocking(() => KernelView.Link(_a.OverlayNs("web"), oldHostEnd) is null, TimeSpan.FromSeconds(5)),
            "the first endpoint's veth is deleted");
        Assert.Equal(["eth0", "lo"], KernelView.LinkNames(c1).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Two_attached_namespaces_ping_each_other_over_br0()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var c2 = _a.Container("c2");
        _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        var ip2 = _a.CliJson("attach", "--netns", c2, "--network", "web", "--name", "c2").GetProperty("ip").GetString()!;
        var (exit, output, _) = Sh.Try("ip", "netns", "exec", c1, "ping", "-c", "2", "-W", "2", ip2);
        Assert.True(exit == 0, output);
    }

    [Fact]
    public void Attach_and_network_create_are_idempotent()
    {
        var n1 = _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var n2 = _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        Assert.Equal(n1.GetProperty("vni").GetInt32(), n2.GetProperty("vni").GetInt32());
        var c1 = _a.Container("c1");
        var first = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        var again = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1");
        Assert.Equal(first.GetProperty("id").GetString(), again.GetProperty("id").GetString());
        Assert.Single(KernelView.Addresses(c1, "eth0"));
        Assert.Single(_a.CliJson("endpoints", "--json").EnumerateArray());
    }

    [Fact]
    public void Static_ip_and_ifname_are_honoured()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        var c1 = _a.Container("c1");
        var ep = _a.CliJson("attach", "--netns", c1, "--network", "web", "--name", "c1", "--ip", "198.19.1.77", "--ifname", "ovl0");
        Assert.Equal("198.19.1.77", ep.GetProperty("ip").GetString());
        Assert.Contains("198.19.1.77/24", KernelView.Addresses(c1, "ovl0"));
    }

    [Fact]
    public void Metrics_report_networks_endpoints_netlink_and_api()
    {
        _a.CliJson("network", "create", "web", "--subnet", "198.19.1.0/24");
        _a.CliJson("attach", "--netns", _a.Container("c1"), "--network", "web", "--name", "c1");
        var m = _a.Metrics();
        Assert.Contains("discovery_networks 1", m);
        Assert.Contains("discovery_endpoints{network=\"web\"} 1", m);
        Assert.Matches("discovery_netlink_ops_total\\{op=\"[a-z_]+\",result=\"ok\"\\} [1-9]", m);
        Assert.Contains("discovery_api_requests_total{route=\"POST /v1/attach\",code=\"200\"} 1", m);
        Assert.Contains("discovery_build_info{", m);
    }
}

[CollectionDefinition("agent", DisableParallelization = true)]
public sealed class AgentCollection;
