using System.Net.Sockets;
using Discovery.Lb.Rendering;
using Discovery.Model;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Lb;

/// <summary>The sandbox table in a real client namespace: real TCP/UDP through the VIP to servers in backend namespaces.</summary>
public sealed class SandboxTableTests
{
    private static int s_subnet = Random.Shared.Next(20, 200);
    private static int NextSubnet() => Interlocked.Increment(ref s_subnet) % 250;

    private static async Task<Dictionary<string, int>> Spread(LbNamespaces lab, System.Net.IPAddress vip, int connections)
    {
        var seen = new Dictionary<string, int>();
        for (var i = 0; i < connections; i++)
        {
            var reply = await lab.Connect(vip);
            var name = reply.Split(' ')[0];
            seen[name] = seen.GetValueOrDefault(name) + 1;
        }
        return seen;
    }

    [Fact]
    public async Task Every_backend_is_reached_through_the_VIP_and_sees_the_client_own_address()
    {
        using var lab = new LbNamespaces(3, NextSubnet());
        lab.AttachClient();
        lab.Program(LbNamespaces.Service("web", lab.Vip()), lab.Backends.Select(b => b.Endpoint));
        var seen = new HashSet<string>();
        await Eventually.Until(async () =>
        {
            var reply = await lab.Connect(lab.Vip());
            Assert.EndsWith(" " + lab.ClientAddress, reply);   // no SNAT: the backend sees the client itself
            seen.Add(reply.Split(' ')[0]);
            return seen.Count == 3;
        }, TimeSpan.FromSeconds(20), "all 3 backends reached through the VIP");
        var udp = await lab.UdpAsk(lab.Vip());
        Assert.EndsWith(" " + lab.ClientAddress, udp);
    }

    [Fact]
    public async Task A_VIP_without_backends_and_an_unknown_port_are_refused_at_once()
    {
        using var lab = new LbNamespaces(1, NextSubnet());
        lab.AttachClient();
        lab.Program(LbNamespaces.Service("empty", lab.Vip(201)), []);
        lab.Program(LbNamespaces.Service("web", lab.Vip()), lab.Backends.Select(b => b.Endpoint));
        // Positive signal first: the table is live.
        Assert.StartsWith("b0 ", await lab.Connect(lab.Vip()));
        var started = System.Diagnostics.Stopwatch.StartNew();
        // The reject runs on the client's own output hook: connect() fails with the local verdict (EPERM) or the
        // reset (ECONNREFUSED), whichever the stack reports first; either way at once, never a SYN timeout.
        SocketError[] refused = [SocketError.ConnectionRefused, SocketError.AccessDenied];
        var noBackend = await Assert.ThrowsAsync<SocketException>(() => lab.Connect(lab.Vip(201)));
        Assert.Contains(noBackend.SocketErrorCode, refused);
        var unknownPort = await Assert.ThrowsAsync<SocketException>(() => lab.Connect(lab.Vip(), 9999));
        Assert.Contains(unknownPort.SocketErrorCode, refused);
        var udp = await Assert.ThrowsAsync<SocketException>(() => lab.UdpAsk(lab.Vip(201)));
        Assert.Contains(udp.SocketErrorCode, refused);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(1), $"refusals took {started.Elapsed}: black-holed, not rejected");
    }

    [Fact]
    public async Task A_removed_or_draining_backend_gets_no_new_connections_after_the_element_update()
    {
        using var lab = new LbNamespaces(3, NextSubnet());
        lab.AttachClient();
        var service = LbNamespaces.Service("web", lab.Vip());
        lab.Program(service, lab.Backends.Select(b => b.Endpoint));
        var before = await Spread(lab, lab.Vip(), 40);
        Assert.True(before.ContainsKey("b0"), "b0 got connections before it drained");
        // b0 drains (Disabled): it must leave the slots at once.
        lab.Program(service, lab.Backends.Select(b => b.Name == "b0" ? b.Endpoint with { Disabled = true } : b.Endpoint));
        var after = await Spread(lab, lab.Vip(), 40);
        Assert.False(after.ContainsKey("b0"), $"draining b0 got {after.GetValueOrDefault("b0")} new connections");
        Assert.True(after.ContainsKey("b1") && after.ContainsKey("b2"));
        // b0 is healthy again; b1 is removed from the catalog.
        lab.Program(service, lab.Backends.Where(b => b.Name != "b1").Select(b => b.Endpoint));
        var last = await Spread(lab, lab.Vip(), 40);
        Assert.False(last.ContainsKey("b1"));
        Assert.True(last.ContainsKey("b0") && last.ContainsKey("b2"));
    }

    [Fact]
    public async Task When_every_backend_is_unhealthy_all_of_them_are_used()
    {
        using var lab = new LbNamespaces(2, NextSubnet());
        lab.AttachClient();
        lab.Program(LbNamespaces.Service("web", lab.Vip()), lab.Backends.Select(b => b.Endpoint with { Unhealthy = true }));
        var seen = await Spread(lab, lab.Vip(), 30);
        Assert.Equal(2, seen.Count);
    }

    [Fact]
    public async Task Consistent_balancing_picks_the_same_backend_for_a_flow_after_conntrack_is_flushed()
    {
        using var lab = new LbNamespaces(3, NextSubnet());
        lab.AttachClient();
        lab.Program(LbNamespaces.Service("web", lab.Vip(), BalanceMode.Consistent), lab.Backends.Select(b => b.Endpoint));
        var first = new Dictionary<int, string>();
        for (var port = 41000; port < 41020; port++) first[port] = (await lab.Connect(lab.Vip(), sourcePort: port)).Split(' ')[0];
        Assert.True(first.Values.Distinct().Count() >= 2, "20 source ports spread over more than one backend");
        LbNamespaces.Conntrack(lab.Client, "-F");
        foreach (var (port, backend) in first)
            Assert.Equal(backend, (await lab.Connect(lab.Vip(), sourcePort: port)).Split(' ')[0]);
    }

    [Fact]
    public async Task Client_ip_affinity_keeps_a_client_on_one_backend()
    {
        using var lab = new LbNamespaces(3, NextSubnet());
        lab.AttachClient();
        var service = LbNamespaces.Service("web", lab.Vip(), affinity: 60);
        lab.Program(service, lab.Backends.Select(b => b.Endpoint));
        var seen = await Spread(lab, lab.Vip(), 20);
        Assert.Single(seen);
        // The backend leaves: its affinity entry goes with it, and the client lands on another one.
        var gone = seen.Keys.Single();
        lab.Program(service, lab.Backends.Where(b => b.Name != gone).Select(b => b.Endpoint));
        var after = await Spread(lab, lab.Vip(), 10);
        Assert.Single(after);
        Assert.NotEqual(gone, after.Keys.Single());
    }

    [Fact]
    public async Task A_failed_change_marks_the_sandbox_and_a_resync_restores_the_table()
    {
        using var lab = new LbNamespaces(2, NextSubnet());
        lab.AttachClient();
        var service = LbNamespaces.Service("web", lab.Vip());
        lab.Program(service, lab.Backends.Select(b => b.Endpoint));
        Assert.Contains("b", await lab.Connect(lab.Vip()));
        // Someone else deletes our table: the next change fails in the kernel, and the sandbox is marked.
        lab.Nft($"delete table ip {SandboxRuleset.TableName}");
        lab.Program(service, lab.Backends.Take(1).Select(b => b.Endpoint));
        Assert.Equal(1, lab.Tables.DirtyCount);
        Assert.Equal(1, lab.Tables.ResyncDirty());
        Assert.Equal(0, lab.Tables.DirtyCount);
        var seen = await Spread(lab, lab.Vip(), 10);
        Assert.Equal(["b0"], seen.Keys);
    }
}
