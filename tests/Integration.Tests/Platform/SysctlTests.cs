using Discovery.Platform;
using Discovery.Tests.Support;
using Xunit;

namespace Discovery.Tests.Platform;

public sealed class SysctlTests
{
    [Fact]
    public void A_write_changes_only_its_own_namespace()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var b = k.CreateNetNs("b");
        var hostBefore = Sysctl.Read(NetNs.Host, "net.ipv4.ip_forward");

        Sysctl.Write(a, "net.ipv4.ip_forward", "1");

        Assert.Equal("1", Sysctl.Read(a, "net.ipv4.ip_forward"));
        Assert.Equal("0", Sysctl.Read(b, "net.ipv4.ip_forward"));
        Assert.Equal(hostBefore, Sysctl.Read(NetNs.Host, "net.ipv4.ip_forward"));
        Assert.Equal("1", Cli.Run("ip", "netns", "exec", k.Name("a"), "sysctl", "-n", "net.ipv4.ip_forward").Trim());
        Assert.Equal("0", Cli.Run("ip", "netns", "exec", k.Name("b"), "sysctl", "-n", "net.ipv4.ip_forward").Trim());
    }

    [Fact]
    public void Bridge_netfilter_can_be_turned_off_in_one_namespace()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var b = k.CreateNetNs("b");
        Assert.Equal("1", Sysctl.Read(a, "net.bridge.bridge-nf-call-iptables"));   // every new namespace starts with it on
        Sysctl.Write(a, "net.bridge.bridge-nf-call-iptables", "0");
        Assert.Equal("0", Sysctl.Read(a, "net.bridge.bridge-nf-call-iptables"));
        Assert.Equal("1", Sysctl.Read(b, "net.bridge.bridge-nf-call-iptables"));
    }

    [Fact]
    public void Per_interface_keys_work_with_slashes()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        k.Netlink(a).CreateBridge("br0");
        Sysctl.Write(a, "net/ipv4/conf/br0/route_localnet", "1");
        Assert.Equal("1", Sysctl.Read(a, "net.ipv4.conf.br0.route_localnet"));
        Assert.Equal("1", Cli.Run("ip", "netns", "exec", k.Name("a"), "sysctl", "-n", "net.ipv4.conf.br0.route_localnet").Trim());
    }

    [Fact]
    public void A_missing_key_throws_SysctlException_naming_the_key()
    {
        using var k = new KernelScope();
        var a = k.CreateNetNs("a");
        var ex = Assert.Throws<SysctlException>(() => Sysctl.Read(a, "net.ipv4.no_such_key"));
        Assert.Equal("net.ipv4.no_such_key", ex.Key);
        Assert.Contains("no such key", ex.Message);
        Assert.Throws<SysctlException>(() => Sysctl.Write(a, "net.ipv4.no_such_key", "1"));
    }
}
