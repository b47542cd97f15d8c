using System.Collections.Immutable;
using System.Net;
using Discovery.Lb.Ingress;
using Discovery.Lb.Selection;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests.Lb;

/// <summary>The pure core of the routing mesh: plan, legs needed and rendered element updates (no kernel, no root).</summary>
public sealed class IngressPlanTests
{
    private static readonly HostLegInfo Leg = new("web", "dhaaaaaaaaaaa", IPAddress.Parse("198.19.77.129"));

    private static EndpointRecord Task(string node, string ip, string service = "web", bool disabled = false, bool unhealthy = false) =>
        new(new string(ip.Last(), 64), "web", "t" + ip, [], service, IPAddress.Parse(ip), null, "02:42:00:00:00:01", node,
            IPAddress.Parse("198.18.77.1"), "", "", [], disabled) { Unhealthy = unhealthy };

    private static ServiceSpec Svc(PublishMode mode, IPAddress? hostIp = null) =>
        new("web", [new ServiceNetwork("web", null)], ServiceMode.Vip, [new ServicePortSpec("http", "tcp", 80, 8080, hostIp)], mode, 0, BalanceMode.Random, 0, 1);

    private static readonly EndpointRecord[] Three = [Task("h1", "198.19.77.2"), Task("h2", "198.19.77.3"), Task("h3", "198.19.77.4")];

    [Fact]
    public void Ingress_mode_leads_to_every_task_and_marks_only_remote_ones_for_snat()
    {
        var port = Assert.Single(IngressPlan.Build([Svc(PublishMode.Ingress)], Three, "h1", [Leg]).Ports);
        Assert.Equal(["198.19.77.2:False", "198.19.77.3:True", "198.19.77.4:True"], port.Backends.Select(b => $"{b.Address}:{b.Remote}"));
        Assert.All(port.Backends, b => Assert.Equal(80, b.Port));
    }

    [Fact]
    public void Local_mode_with_no_local_task_keeps_the_port_to_reject_it()
    {
        var port = Assert.Single(IngressPlan.Build([Svc(PublishMode.Local)], Three.Skip(1), "h1", [Leg]).Ports);
        Assert.Empty(port.Backends);
        Assert.Contains("any_rejected { tcp . 8080 }", IngressRuleset.Render("t", IngressPlan.Build([Svc(PublishMode.Local)], Three.Skip(1), "h1", [Leg])));
        // Such a host needs no leg (HostLegNeeds gives it none) and still rejects.
        Assert.Empty(Assert.Single(IngressPlan.Build([Svc(PublishMode.Local)], Three.Skip(1), "h1", []).Ports).Backends);
    }

    [Fact]
    public void Host_mode_with_no_local_task_does_not_publish()
    {
        Assert.Empty(IngressPlan.Build([Svc(PublishMode.Host)], Three.Skip(1), "h1", [Leg]).Ports);
        Assert.Equal(["198.19.77.2"], IngressPlan.Build([Svc(PublishMode.Host)], Three, "h1", [Leg]).Ports.Single().Backends.Select(b => b.Address.ToString()));
    }

    [Fact]
    public void Draining_tasks_get_nothing_and_unhealthy_ones_only_when_no_task_is_healthy()
    {
        EndpointRecord[] tasks = [Task("h1", "198.19.77.2", disabled: true), Task("h2", "198.19.77.3", unhealthy: true), Task("h3", "198.19.77.4")];
        Assert.Equal(["198.19.77.4"], IngressPlan.Build([Svc(PublishMode.Ingress)], tasks, "h1", [Leg]).Ports.Single().Backends.Select(b => b.Address.ToString()));
        Assert.Equal(["198.19.77.3"], IngressPlan.Build([Svc(PublishMode.Ingress)], tasks[..2], "h1", [Leg]).Ports.Single().Backends.Select(b => b.Address.ToString()));
    }

    [Fact]
    public void No_leg_on_the_network_means_no_published_port()
    {
        Assert.Empty(IngressPlan.Build([Svc(PublishMode.Ingress)], Three, "h1", []).Ports);
    }

    [Fact]
    public void Loopback_publishing_marks_only_its_leg_for_route_localnet()
    {
        Assert.Empty(IngressPlan.Build([Svc(PublishMode.Ingress)], Three, "h1", [Leg]).LocalnetLegs);
        Assert.Equal([Leg.Ifname], IngressPlan.Build([Svc(PublishMode.Ingress, IPAddress.Loopback)], Three, "h1", [Leg]).LocalnetLegs.ToArray());
    }

    [Fact]
    public void Legs_are_needed_everywhere_for_ingress_and_only_beside_a_local_task_for_local_and_host()
    {
        var nets = new HashSet<string> { "web" };
        Assert.Equal(["web"], HostLegNeeds.Networks([Svc(PublishMode.Ingress)], Three.Skip(1), "h1", nets));
        Assert.Empty(HostLegNeeds.Networks([Svc(PublishMode.Local)], Three.Skip(1), "h1", nets));
        Assert.Equal(["web"], HostLegNeeds.Networks([Svc(PublishMode.Host)], Three, "h1", nets));
        Assert.Empty(HostLegNeeds.Networks([Svc(PublishMode.Ingress)], Three, "h1", new HashSet<string>()));
    }

    [Fact]
    public void A_backend_change_is_element_updates_only_and_no_change_sends_nothing()
    {
        var before = IngressPlan.Build([Svc(PublishMode.Ingress)], Three, "h1", [Leg]);
        var after = IngressPlan.Build([Svc(PublishMode.Ingress)], Three[..2], "h1", [Leg]);
        Assert.Equal("", IngressRuleset.Diff("t", before, before));
        var diff = IngressRuleset.Diff("t", before, after);
        var lines = diff.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.Matches("^(add|delete) element ip t ", l));
        Assert.Contains("delete element ip t remote { 198.19.77.4 }", diff);
        Assert.DoesNotContain("198.19.77.4", string.Join("\n", lines.Where(l => l.StartsWith("add", StringComparison.Ordinal))));
        // Deletions come before additions: a map key whose value changes is deleted, then added, in one transaction.
        Assert.True(lines.TakeWhile(l => l.StartsWith("delete", StringComparison.Ordinal)).Count() + lines.SkipWhile(l => l.StartsWith("delete", StringComparison.Ordinal)).Count(l => l.StartsWith("add", StringComparison.Ordinal)) == lines.Length);
    }

    [Fact]
    public void Seventy_tasks_all_get_slots_in_lb_cores_large_random_tier()
    {
        var tasks = Enumerable.Range(0, 70).Select(i => Task("h" + (i % 3 + 1), $"198.19.77.{i + 10}") with { Id = i.ToString("x64") }).ToList();
        var port = IngressPlan.Build([Svc(PublishMode.Ingress)], tasks, "h1", [Leg]).Ports.Single();
        Assert.Equal(70, port.Backends.Length);
        Assert.Equal(SlotTiers.For(BalanceMode.Random, 70), port.Tier);
        Assert.Equal(Enumerable.Range(0, 70), port.Slots.Distinct().Order());
        Assert.Contains("any_r1024 { tcp . 8080 }", IngressRuleset.Render("t", IngressPlan.Build([Svc(PublishMode.Ingress)], tasks, "h1", [Leg])));
    }

    [Fact]
    public void Consistent_balance_fills_maglev_slots_from_the_service_seed_as_its_vip_does()
    {
        var svc = Svc(PublishMode.Ingress) with { Balance = BalanceMode.Consistent };
        var port = IngressPlan.Build([svc], Three, "h2", [Leg]).Ports.Single();
        Assert.Equal(new SlotTier(BalanceMode.Consistent, SlotTiers.ConsistentSmallSlots), port.Tier);
        // Every host computes the same slots, whichever host it is (only the Remote marks differ).
        Assert.Equal(port.Slots.ToArray(), IngressPlan.Build([svc], Three, "h3", [Leg]).Ports.Single().Slots.ToArray());
        Assert.Equal(SlotFilling.Fill(port.Tier, BackendSelection.Select(Three), svc.Seed).ToArray(), port.Slots.ToArray());
    }
}
