using System.Net;
using Discovery.Platform;
using Discovery.Tests.Support;
using Xunit;

namespace Discovery.Tests.Platform;

public sealed class AddressRouteTests
{
    private static (KernelScope K, Rtnetlink Nl) BridgeUp()
    {
        var k = new KernelScope();
        try
        {
            var nl = k.Netlink(k.CreateNetNs("a"));
            nl.CreateBridge("br0");
            nl.SetLink("br0", up: true);
            return (k, nl);
        }
        catch
        {
            k.Dispose();
            throw;
        }
    }

    private static string[] IpAddresses(KernelScope k, string dev) =>
        Cli.Json("ip", "-n", k.Name("a"), "addr", "show", "dev", dev).EnumerateArray()
            .SelectMany(l => l.GetProperty("addr_info").EnumerateArray())
            .Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}")
            .ToArray();

    [Fact]
    public void AddAddress_is_idempotent_and_visible_to_ip()
    {
        var (k, nl) = BridgeUp();
        using (k)
        {
            nl.AddAddress("br0", IPAddress.Parse("198.19.1.1"), 24);
            nl.AddAddress("br0", IPAddress.Parse("198.19.1.1"), 24);
            Assert.Single(IpAddresses(k, "br0"), a => a.StartsWith("198.19.1.1/", StringComparison.Ordinal));
            Assert.Contains("198.19.1.1/24", IpAddresses(k, "br0"));
            var index = nl.GetLink("br0")!.Index;
            Assert.Contains(new AddressInfo(index, IPAddress.Parse("198.19.1.1"), 24), nl.GetAddresses("br0"));
            Assert.Contains(new AddressInfo(index, IPAddress.Parse("198.19.1.1"), 24), nl.GetAddresses());
        }
    }

    [Fact]
    public void DeleteAddress_removes_it_and_then_reports_absence()
    {
        var (k, nl) = BridgeUp();
        using (k)
        {
            nl.AddAddress("br0", IPAddress.Parse("198.19.1.1"), 24);
            nl.AddAddress("br0", IPAddress.Parse("198.19.2.2"), 24);   // another subnet: deleting a primary drops its secondaries
            Assert.True(nl.DeleteAddress("br0", IPAddress.Parse("198.19.1.1"), 24));
            Assert.False(nl.DeleteAddress("br0", IPAddress.Parse("198.19.1.1"), 24));
            Assert.DoesNotContain("198.19.1.1/24", IpAddresses(k, "br0"));
            Assert.Contains("198.19.2.2/24", IpAddresses(k, "br0"));
        }
    }

    [Fact]
    public void A_loopback_address_gets_host_scope_like_ip_gives_it()
    {
        var (k, nl) = BridgeUp();
        using (k)
        {
            nl.SetLink("lo", up: true);
            nl.AddAddress("lo", IPAddress.Parse("127.0.0.11"), 32);
            var info = Cli.Json("ip", "-n", k.Name("a"), "addr", "show", "dev", "lo").EnumerateArray()
                .SelectMany(l => l.GetProperty("addr_info").EnumerateArray())
                .Single(a => a.GetProperty("local").GetString() == "127.0.0.11");
            Assert.Equal("host", info.GetProperty("scope").GetString());
        }
    }

    [Fact]
    public void Address_on_an_absent_link_throws_ENODEV_naming_addr_add()
    {
        var (k, nl) = BridgeUp();
        using (k)
        {
            var ex = Assert.Throws<NetlinkException>(() => nl.AddAddress("nosuch0", IPAddress.Parse("198.19.1.1"), 24));
            Assert.Equal(("addr_add", Errno.ENODEV), (ex.Operation, ex.Errno));
            Assert.Contains("nosuch0", ex.Message);
        }
    }

    private static string Routes(KernelScope k) => Cli.Run("ip", "-n", k.Name("a"), "route", "show");

    [Fact]
    public void AddRoute_via_a_gateway_replaces_an_existing_route_to_the_same_destination()
    {
        var (k, nl) = BridgeUp();
        using (k)
        {
            nl.AddAddress("br0", IPAddress.Parse("198.19.1.1"), 24);
            var destination = IPNetwork.Parse("198.19.50.0/24");
            nl.AddRoute(destination, IPAddress.Parse("198.19.1.254"), null);
            Assert.Contains("198.19.50.0/24 via 198.19.1.254 dev br0", Routes(k));
            nl.AddRoute(destination, IPAddress.Parse("198.19.1.253"), "br0");
            var routes = Routes(k);
            Assert.Contains("198.19.50.0/24 via 198.19.1.253 dev br0", routes);
            Assert.DoesNotContain("198.19.1.254", routes);
        }
    }

    [Fact]
    public void AddRoute_without_gateway_is_an_on_link_route()
    {
        var (k, nl) = BridgeUp();
        using (k)
        {
            nl.AddRoute(IPNetwork.Parse("198.19.60.0/24"), null, "br0");
            Assert.Contains("198.19.60.0/24 dev br0 scope link", Routes(k));
        }
    }

    [Fact]
    public void Default_route_and_its_deletion()
    {
        var (k, nl) = BridgeUp();
        using (k)
        {
            nl.AddAddress("br0", IPAddress.Parse("198.19.1.1"), 24);
            nl.AddRoute(IPNetwork.Parse("0.0.0.0/0"), IPAddress.Parse("198.19.1.254"), "br0");
            Assert.Contains("default via 198.19.1.254 dev br0", Routes(k));
            Assert.True(nl.DeleteRoute(IPNetwork.Parse("0.0.0.0/0"), IPAddress.Parse("198.19.1.254"), "br0"));
            Assert.DoesNotContain("default", Routes(k));
            Assert.False(nl.DeleteRoute(IPNetwork.Parse("0.0.0.0/0"), IPAddress.Parse("198.19.1.254"), "br0"));
        }
    }

    [Fact]
    public void A_route_through_an_unreachable_gateway_is_refused_with_route_add()
    {
        var (k, nl) = BridgeUp();
        using (k)
        {
            var ex = Assert.Throws<NetlinkException>(() => nl.AddRoute(IPNetwork.Parse("198.19.70.0/24"), IPAddress.Parse("198.18.200.1"), null));
            Assert.Equal("route_add", ex.Operation);
            Assert.Equal(101, ex.Errno);   // ENETUNREACH
            Assert.Contains("Nexthop has invalid gateway", ex.Message);   // the kernel's extack text
        }
    }
}
