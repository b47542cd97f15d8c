using System.Net;
using Discovery.Platform;
using Discovery.Tests.Support;
using Xunit;

namespace Discovery.Tests.Platform.Conntrack;

public sealed class ConntrackTableTests
{
    private static readonly BackendFlows XUdp = new(DnatLab.X, FlowProtocols.Udp) { Vip = DnatLab.Vip, VipPort = DnatLab.UdpVipPort };

    [Fact]
    public void A_udp_flow_pinned_to_a_dead_backend_reaches_the_live_one_after_its_entries_are_deleted()
    {
        using var lab = new DnatLab();
        using var table = ConntrackTable.Open(lab.Client);
        using var client = lab.OpenUdpClient(40000);
        Assert.Equal(DnatLab.X.ToString(), client.Answer());

        lab.RouteTo(DnatLab.Y);
        Assert.Equal(DnatLab.X.ToString(), client.Answer());        // conntrack pins the flow: the rule change alone moves nothing
        lab.Kill(DnatLab.X);
        Assert.Equal("timeout", client.Probe());                   // and now it is black-holed

        Assert.Equal(1, table.DeleteBackendFlows(XUdp));
        Assert.Equal(DnatLab.Y.ToString(), client.Answer());
    }

    [Fact]
    public void With_50k_unrelated_entries_only_the_backends_entries_are_deleted()
    {
        using var lab = new DnatLab();
        using var table = ConntrackTable.Open(lab.Client);
        using var client = lab.OpenUdpClient(40001);
        Assert.Equal(DnatLab.X.ToString(), client.Answer());        // one real DNATed flow on X

        var client2 = IPAddress.Parse("198.18.201.1");
        var other = IPAddress.Parse("198.19.252.9");
        var unrelated = Enumerable.Range(0, 50_000).Select(i => ConntrackEntry.Unnatted(new ConntrackTuple(
            IPAddress.Parse($"198.18.{202 + i / 60000}.{1 + i % 250}"), IPAddress.Parse($"198.19.200.{1 + i % 200}"), 17, (ushort)(1024 + i % 60000), 9))).ToList();
        // Same backend, but what the filter must leave alone: another VIP, another port on the VIP, TCP.
        ConntrackEntry ToX(byte protocol, IPAddress vip, ushort vipPort, ushort clientPort) => new(
            new ConntrackTuple(client2, vip, protocol, clientPort, vipPort),
            new ConntrackTuple(DnatLab.X, client2, protocol, DnatLab.UdpBackendPort, clientPort));
        var decoys = new List<ConntrackEntry>
        {
            ToX(17, other, DnatLab.UdpVipPort, 50000),
            ToX(17, DnatLab.Vip, 54, 50001),
            ToX(6, DnatLab.Vip, DnatLab.UdpVipPort, 50002),
        };
        // More than one dump datagram and more than one window of pipelined deletes.
        var targets = Enumerable.Range(0, 3000).Select(i => ToX(17, DnatLab.Vip, DnatLab.UdpVipPort, (ushort)(51000 + i))).ToList();
        Assert.Equal(50_000 + decoys.Count + targets.Count, table.Create([.. unrelated, .. decoys, .. targets], TimeSpan.FromMinutes(10)));

        var before = int.Parse(lab.ConntrackCli("-C").Trim());
        Assert.Equal(table.Count(), before);
        Assert.True(before >= 50_000 + decoys.Count + targets.Count + 1, $"table holds {before}");

        Assert.Equal(targets.Count + 1, table.DeleteBackendFlows(XUdp));

        Assert.Equal(before - targets.Count - 1, int.Parse(lab.ConntrackCli("-C").Trim()));
        Assert.Equal("", lab.ConntrackCli("-L", "-p", "udp", "--orig-dst", DnatLab.Vip.ToString(), "--dport", "53", "--reply-src", DnatLab.X.ToString()).Trim());
        var left = table.List(new BackendFlows(DnatLab.X, FlowProtocols.UdpAndTcp));
        Assert.Equal(decoys.Select(d => d.Original).OrderBy(t => t.SourcePort), left.Select(e => e.Original).OrderBy(t => t.SourcePort));
        Assert.Equal(0, table.MalformedEntries);
    }

    [Fact]
    public void Tcp_entries_of_the_backend_are_deleted_when_asked_and_kept_when_only_udp_is()
    {
        using var lab = new DnatLab();
        using var table = ConntrackTable.Open(lab.Client);
        using var connection = lab.ConnectTcp();
        using var client = lab.OpenUdpClient(40002);
        Assert.Equal(DnatLab.X.ToString(), client.Answer());
        var tcp = new BackendFlows(DnatLab.X, FlowProtocols.Tcp) { BackendPort = DnatLab.TcpBackendPort };
        var established = Assert.Single(table.List(tcp));
        Assert.Equal(DnatLab.Vip, established.Original.Destination);
        Assert.Equal(DnatLab.X, established.Reply.Source);

        Assert.Equal(1, table.DeleteBackendFlows(new BackendFlows(DnatLab.X, FlowProtocols.Udp)));
        Assert.Single(table.List(tcp));                            // udp only: the connection's entry stays

        Assert.Equal(1, table.DeleteBackendFlows(new BackendFlows(DnatLab.X, FlowProtocols.UdpAndTcp)));
        Assert.Empty(table.List(tcp));
        Assert.Equal("", lab.ConntrackCli("-L", "-p", "tcp", "--reply-src", DnatLab.X.ToString()).Trim());
    }

    [Fact]
    public void Deleting_in_a_namespace_without_entries_returns_0()
    {
        using var k = new KernelScope();
        using var table = ConntrackTable.Open(k.CreateNetNs("e"));
        Assert.Equal(0, table.Count());
        Assert.Equal(0, table.DeleteBackendFlows(XUdp));
        Assert.Empty(table.List(XUdp));
    }

    [Fact]
    public void Deleting_with_entries_but_none_of_the_backend_returns_0_and_deletes_nothing()
    {
        using var k = new KernelScope();
        using var table = ConntrackTable.Open(k.CreateNetNs("n"));
        var entry = ConntrackEntry.Unnatted(new ConntrackTuple(IPAddress.Parse("198.18.9.1"), IPAddress.Parse("198.19.9.1"), 17, 1000, 53));
        Assert.Equal(1, table.Create([entry], TimeSpan.FromMinutes(1)));
        Assert.Equal(0, table.DeleteBackendFlows(XUdp));
        Assert.Equal(1, table.Count());
    }

    [Fact]
    public void A_namespace_that_does_not_exist_gives_a_ConntrackException_naming_it()
    {
        var name = RunId.New() + "missing";
        var ex = Assert.Throws<ConntrackException>(() => ConntrackTable.Open(name));
        Assert.Contains(name, ex.Message);
        Assert.Equal("open", ex.Operation);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void A_kernel_refusal_gives_a_ConntrackException_with_errno_namespace_and_request()
    {
        using var k = new KernelScope();
        var ns = k.CreateNetNs("r");
        using var table = ConntrackTable.Open(ns);
        var entry = ConntrackEntry.Unnatted(new ConntrackTuple(IPAddress.Parse("198.18.9.1"), IPAddress.Parse("198.19.9.1"), 17, 1000, 53));
        // Protocols differ between the tuples: the kernel answers EINVAL.
        var bad = entry with { Reply = entry.Reply with { Protocol = 6 } };
        var ex = Assert.Throws<ConntrackException>(() => table.Create([bad], TimeSpan.FromMinutes(1)));
        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Contains(k.Name("r"), ex.Message);
        Assert.Contains("create", ex.Message);
        Assert.Contains("EINVAL", ex.Message);
    }

    [Fact]
    public void IPv6_entries_of_the_backend_are_deleted_and_the_others_kept()
    {
        // IPv6 forms of 198.18.0.0/15 addresses (the NAT64 prefix), in a namespace that carries no traffic.
        using var k = new KernelScope();
        using var table = ConntrackTable.Open(k.CreateNetNs("6"));
        var backend = IPAddress.Parse("64:ff9b::198.19.254.1");
        var otherBackend = IPAddress.Parse("64:ff9b::198.19.254.2");
        var vip = IPAddress.Parse("64:ff9b::198.19.253.53");
        ConntrackEntry Flow(IPAddress to, ushort clientPort) => new(
            new ConntrackTuple(IPAddress.Parse("64:ff9b::198.18.7.1"), vip, 17, clientPort, 53),
            new ConntrackTuple(to, IPAddress.Parse("64:ff9b::198.18.7.1"), 17, 5353, clientPort));
        Assert.Equal(5, table.Create([Flow(backend, 1000), Flow(backend, 1001), Flow(otherBackend, 1002), Flow(otherBackend, 1003), Flow(otherBackend, 1004)], TimeSpan.FromMinutes(1)));

        Assert.Equal(2, table.DeleteBackendFlows(new BackendFlows(backend, FlowProtocols.Udp) { Vip = vip, VipPort = 53 }));
        Assert.Equal(3, table.Count());
        Assert.Equal(3, table.List(new BackendFlows(otherBackend, FlowProtocols.Udp)).Count);
    }
}
