using System.Collections.Immutable;
using System.Net;
using ARSoft.Tools.Net.Dns;
using CsCheck;
using Discovery.Model;
using Discovery.Resolver.Answers;
using Discovery.Resolver.Names;
using Discovery.Resolver.Wire;
using Xunit;
using RecordType = ARSoft.Tools.Net.Dns.RecordType;

namespace Discovery.Tests.Resolver;

/// <summary>The names of services (vip, dnsrr, no spec yet), health and draining, SRV and PTR of VIPs.</summary>
public class ServiceNameTests
{
    private const string Cd = "discovery.internal";
    private static readonly LocalAnswerer Answerer = new(5, Cd);

    private static ServiceSpec Spec(string name, ServiceMode mode, params (string Network, string? Vip)[] networks) =>
        new(name, [.. networks.Select(n => new ServiceNetwork(n.Network, n.Vip is null ? null : IPAddress.Parse(n.Vip)))], mode,
            [new ServicePortSpec("http", "tcp", 80, 8080, null), new ServicePortSpec("dns", "udp", 53, 0, null)],
            PublishMode.Ingress, 0, BalanceMode.Random, 0, 7);

    private static EndpointRecord Task(int i, string network = "n1", string service = "web", bool unhealthy = false, bool disabled = false, bool hostLeg = false)
        => Endpoints.Make($"{i:x4}", network, $"web-{i}", $"198.19.{(network == "n1" ? 1 : 2)}.{i + 10}", service: service, disabled: disabled)
            with { Unhealthy = unhealthy, HostLeg = hostLeg };

    private static NameTable Table(IEnumerable<EndpointRecord> eps, params ServiceSpec[] specs) => NameTableBuilder.Build(eps, specs, Cd, 1);

    private static DnsMessage Ask(NameTable table, string name, RecordType type, params string[] networks)
        => LocalAnswererTests.AskParsed(Answerer, table, networks.Length == 0 ? ["n1"] : networks, name, type, edns: true, udp: 4096);

    /// <summary>The name is not local for these networks: the answerer leaves it to the upstreams.</summary>
    private static bool Forwarded(NameTable table, string name, RecordType type, params string[] networks)
        => LocalAnswererTests.Ask(Answerer, table, networks.Length == 0 ? ["n1"] : networks, ArSoft.Encode(ArSoft.Query(name, type))).Disposition == Disposition.Forward;

    private static string[] A(NameTable table, string name, params string[] networks)
        => [.. Ask(table, name, RecordType.A, networks).AnswerRecords.OfType<ARecord>().Select(a => a.Address.ToString()).Order()];

    [Fact]
    public void Vip_service_name_answers_the_vip_of_the_askers_network_only()
    {
        var table = Table([Task(1), Task(2, "n2")], Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200"), ("n2", "198.19.2.200")));
        Assert.Equal(["198.19.1.200"], A(table, "web.", "n1"));
        Assert.Equal(["198.19.2.200"], A(table, "web.", "n2"));
        Assert.Equal(["198.19.1.200", "198.19.2.200"], A(table, "web.", "n1", "n2"));
        Assert.Equal(ReturnCode.NxDomain, Ask(table, $"web.{Cd}.", RecordType.A, "n3").ReturnCode);
        Assert.Equal(["198.19.1.200"], A(table, "web.n1."));
        Assert.Equal(["198.19.1.200"], A(table, $"web.n1.{Cd}."));
    }

    [Fact]
    public void Vip_service_without_tasks_still_answers_its_vip_and_tasks_name_is_nodata()
    {
        var table = Table([], Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200")));
        Assert.Equal(["198.19.1.200"], A(table, "web."));
        var tasks = Ask(table, $"tasks.web.{Cd}.", RecordType.A);
        Assert.Equal(ReturnCode.NxDomain, tasks.ReturnCode); // under the cluster domain, tasks.web.CD is not a name
        var bare = Ask(table, "tasks.web.", RecordType.A);
        Assert.Equal(ReturnCode.NoError, bare.ReturnCode);
        Assert.Empty(bare.AnswerRecords);
    }

    [Fact]
    public void Tasks_name_answers_healthy_tasks_and_leaves_out_unhealthy_and_draining_ones()
    {
        var table = Table([Task(1), Task(2, unhealthy: true), Task(3, disabled: true), Task(4)], Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200")));
        Assert.Equal(["198.19.1.11", "198.19.1.14"], A(table, "tasks.web."));
    }

    [Fact]
    public void Tasks_name_answers_every_task_when_all_are_unhealthy_but_never_a_draining_one()
    {
        var table = Table([Task(1, unhealthy: true), Task(2, unhealthy: true), Task(3, disabled: true)], Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200")));
        Assert.Equal(["198.19.1.11", "198.19.1.12"], A(table, "tasks.web."));
    }

    [Fact]
    public void Unhealthy_fallback_is_per_network()
    {
        var table = Table([Task(1, unhealthy: true), Task(2, "n2"), Task(3, "n2", unhealthy: true)], Spec("web", ServiceMode.Dnsrr, ("n1", null), ("n2", null)));
        Assert.Equal(["198.19.1.11"], A(table, "tasks.web.", "n1"));
        Assert.Equal(["198.19.2.12"], A(table, "tasks.web.", "n2"));
    }

    [Fact]
    public void Dnsrr_service_answers_its_tasks_for_both_names()
    {
        var table = Table([Task(1), Task(2), Task(3, unhealthy: true)], Spec("web", ServiceMode.Dnsrr, ("n1", null)));
        Assert.Equal(["198.19.1.11", "198.19.1.12"], A(table, "web."));
        Assert.Equal(["198.19.1.11", "198.19.1.12"], A(table, "tasks.web."));
    }

    [Fact]
    public void Service_without_a_spec_answers_its_tasks_as_before()
    {
        var table = Table([Task(1), Task(2), Task(3, disabled: true)]);
        Assert.Equal(["198.19.1.11", "198.19.1.12"], A(table, "web."));
        Assert.Equal(["198.19.1.11", "198.19.1.12"], A(table, "tasks.web."));
    }

    [Fact]
    public void Srv_of_a_vip_service_targets_the_service_with_the_vip_as_glue_and_the_target_port()
    {
        var table = Table([Task(1), Task(2)], Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200")));
        var m = Ask(table, "_http._tcp.web.", RecordType.Srv);
        var srv = Assert.Single(m.AnswerRecords.OfType<SrvRecord>());
        Assert.Equal(80, srv.Port);
        Assert.Equal("web.n1.", srv.Target.ToString().ToLowerInvariant());
        var glue = Assert.Single(m.AdditionalRecords.OfType<ARecord>());
        Assert.Equal("198.19.1.200", glue.Address.ToString());
        Assert.Equal(53, Assert.Single(Ask(table, "_dns._udp.web.", RecordType.Srv).AnswerRecords.OfType<SrvRecord>()).Port);
        var none = Ask(table, "_ftp._tcp.web.", RecordType.Srv);
        Assert.Equal(ReturnCode.NoError, none.ReturnCode);
        Assert.Empty(none.AnswerRecords);
    }

    [Fact]
    public void Srv_in_dnsrr_mode_and_under_tasks_answers_each_live_task()
    {
        ServiceSpec[] specs = [Spec("web", ServiceMode.Dnsrr, ("n1", null)), Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200"))];
        foreach (var spec in specs)
        {
            var table = Table([Task(1), Task(2), Task(3, unhealthy: true)], spec);
            string[] names = spec.Mode == ServiceMode.Dnsrr ? ["_http._tcp.web.", "_http._tcp.tasks.web."] : ["_http._tcp.tasks.web."];
            foreach (var name in names)
            {
                var m = Ask(table, name, RecordType.Srv);
                var srv = m.AnswerRecords.OfType<SrvRecord>().ToList();
                Assert.Equal(["web-1.n1.", "web-2.n1."], srv.Select(s => s.Target.ToString().ToLowerInvariant()).Order());
                Assert.All(srv, s => Assert.Equal(80, s.Port));
                Assert.Equal(["198.19.1.11", "198.19.1.12"], m.AdditionalRecords.OfType<ARecord>().Select(a => a.Address.ToString()).Order());
            }
        }
    }

    [Fact]
    public void Ptr_of_a_vip_answers_the_qualified_service_name_on_the_askers_network()
    {
        var table = Table([Task(1)], Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200")));
        var m = Ask(table, "200.1.19.198.in-addr.arpa.", RecordType.Ptr);
        Assert.Equal("web.n1.", Assert.Single(m.AnswerRecords.OfType<PtrRecord>()).PointerDomainName.ToString().ToLowerInvariant());
        Assert.True(Forwarded(table, "200.1.19.198.in-addr.arpa.", RecordType.Ptr, "n2"));
    }

    [Fact]
    public void Host_leg_endpoints_get_no_address_and_no_ptr()
    {
        var leg = Task(9, hostLeg: true) with { Name = "leg-host-1", Service = null };
        var table = Table([Task(1), leg]);
        Assert.True(Forwarded(table, "leg-host-1.", RecordType.A));
        Assert.Equal(ReturnCode.NxDomain, Ask(table, $"leg-host-1.n1.{Cd}.", RecordType.A).ReturnCode);
        Assert.True(Forwarded(table, "19.1.19.198.in-addr.arpa.", RecordType.Ptr));
        Assert.DoesNotContain(table.Names(), n => n.Contains("leg-host-1") || n.StartsWith("19.1.19.198"));
        var legInService = Task(8, hostLeg: true);
        Assert.Equal(["198.19.1.11"], A(Table([Task(1), legInService]), "tasks.web."));
    }

    [Fact]
    public void Container_names_aliases_and_ptr_of_an_unhealthy_task_keep_answering()
    {
        var ep = Task(1, unhealthy: true) with { Aliases = ["front"] };
        var table = Table([ep, Task(2)], Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200")));
        Assert.Equal(["198.19.1.11"], A(table, "web-1."));
        Assert.Equal(["198.19.1.11"], A(table, "front."));
        Assert.Equal("web-1.n1.", Assert.Single(Ask(table, "11.1.19.198.in-addr.arpa.", RecordType.Ptr).AnswerRecords.OfType<PtrRecord>())
            .PointerDomainName.ToString().ToLowerInvariant());
        Assert.Equal(["198.19.1.12"], A(table, "tasks.web."));
    }

    [Fact]
    public void Tasks_on_a_network_the_spec_does_not_list_answer_as_tasks_there()
    {
        var table = Table([Task(1), Task(2, "n2")], Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200")));
        Assert.Equal(["198.19.2.12"], A(table, "web.", "n2"));
    }

    [Fact]
    public void Removing_the_spec_falls_back_to_the_tasks_and_adding_it_back_to_the_vip()
    {
        var index = new NameIndex(Cd);
        index.Add(Task(1));
        var spec = Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200"));
        index.SetService(spec);
        Assert.Equal(["198.19.1.200"], A(index.Publish(1), "web."));
        index.RemoveService("web");
        var t = index.Publish(2);
        Assert.Equal(["198.19.1.11"], A(t, "web."));
        Assert.True(Forwarded(t, "200.1.19.198.in-addr.arpa.", RecordType.Ptr));
        Assert.DoesNotContain("web.n1.", t.Names());
        index.SetService(spec with { Mode = ServiceMode.Dnsrr, Networks = [new ServiceNetwork("n1", null)] });
        Assert.Equal(["198.19.1.11"], A(index.Publish(3), "web."));
    }

    [Fact]
    public void A_health_flip_rebuilds_the_tasks_names_but_not_the_vip_names()
    {
        var index = new NameIndex(Cd);
        var t1 = Task(1);
        index.Add(t1);
        index.Add(Task(2));
        index.SetService(Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200")));
        var before = index.Publish(1);
        index.Remove(t1);
        index.Add(t1 with { Unhealthy = true });
        var after = index.Publish(2);
        Assert.Same(before.Lookup(DnsName.EncodeLower("web."))![0], after.Lookup(DnsName.EncodeLower("web."))![0]);
        Assert.Same(before.Lookup(DnsName.EncodeLower("_http._tcp.web."))![0], after.Lookup(DnsName.EncodeLower("_http._tcp.web."))![0]);
        Assert.NotSame(before.Lookup(DnsName.EncodeLower("tasks.web."))![0], after.Lookup(DnsName.EncodeLower("tasks.web."))![0]);
        Assert.Equal(["198.19.1.12"], A(after, "tasks.web."));
    }

    [Fact]
    public void A_health_flip_in_a_service_of_5000_tasks_republishes_in_a_few_milliseconds()
    {
        var tasks = Enumerable.Range(0, 5000).Select(i => Endpoints.Make($"{i:x5}", "n1", $"c{i}", $"198.19.{i / 250}.{i % 250 + 2}", service: "big")).ToList();
        var index = new NameIndex(Cd);
        foreach (var t in tasks) index.Add(t);
        index.SetService(Spec("big", ServiceMode.Vip, ("n1", "198.19.100.1")));
        index.Publish(1);
        long best = long.MaxValue;
        for (int round = 0; round < 3; round++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            index.Remove(tasks[round]);
            index.Add(tasks[round] with { Unhealthy = true });
            var after = index.Publish(2 + round);
            best = Math.Min(best, clock.ElapsedTicks * 1000 / System.Diagnostics.Stopwatch.Frequency);
            Assert.Equal(4999 - round, after.Lookup(DnsName.EncodeLower("tasks.big."))![0].V4.Length / 4);
        }
        Assert.True(best < 50, $"republish took {best} ms");
    }

    [Fact]
    public void Incremental_updates_with_services_and_health_give_the_same_table_as_a_fresh_build()
    {
        var pool = Enumerable.Range(0, 24).Select(i => Task(i, i % 3 == 0 ? "n2" : "n1", i % 4 == 0 ? "api" : "web", unhealthy: i % 5 == 0, disabled: i % 11 == 0)
            with { Ports = i % 6 == 0 ? [new ServicePort("admin", "tcp", 9000)] : [] }).ToArray();
        ServiceSpec[] specs = [Spec("web", ServiceMode.Vip, ("n1", "198.19.1.200"), ("n2", "198.19.2.200")), Spec("web", ServiceMode.Dnsrr, ("n1", null)),
            Spec("api", ServiceMode.Vip, ("n2", "198.19.2.201"))];
        // op < pool: toggle an endpoint; next 24: flip its health; last 3: toggle a spec.
        Gen.Int[0, pool.Length * 2 + specs.Length - 1].Array[1, 60].Sample(ops =>
        {
            var index = new NameIndex(Cd);
            var live = new Dictionary<string, EndpointRecord>();
            var liveSpecs = new Dictionary<string, ServiceSpec>();
            foreach (int op in ops)
            {
                if (op < pool.Length)
                {
                    var ep = pool[op];
                    if (live.Remove(ep.Id, out var old)) index.Remove(old);
                    else { live[ep.Id] = ep; index.Add(ep); }
                }
                else if (op < pool.Length * 2)
                {
                    if (!live.TryGetValue(pool[op - pool.Length].Id, out var old)) continue;
                    index.Remove(old);
                    live[old.Id] = old with { Unhealthy = !old.Unhealthy };
                    index.Add(live[old.Id]);
                }
                else
                {
                    var spec = specs[op - pool.Length * 2];
                    if (liveSpecs.TryGetValue(spec.Name, out var cur) && cur.Equals(spec)) { liveSpecs.Remove(spec.Name); index.RemoveService(spec.Name); }
                    else { liveSpecs[spec.Name] = spec; index.SetService(spec); }
                }
                if (op % 3 == 0) index.Publish(1);
            }
            var incremental = index.Publish(2);
            var fresh = NameTableBuilder.Build(live.Values, liveSpecs.Values, Cd, 2);
            Assert.Equal(fresh.Names().Order(), incremental.Names().Order());
            foreach (var name in fresh.Names())
            {
                var key = DnsName.EncodeLower(name);
                var a = fresh.Lookup(key)!.OrderBy(r => fresh.Networks[r.Network]).ToArray();
                var b = incremental.Lookup(key)!.OrderBy(r => incremental.Networks[r.Network]).ToArray();
                Assert.Equal(a.Select(r => fresh.Networks[r.Network]), b.Select(r => incremental.Networks[r.Network]));
                for (int i = 0; i < a.Length; i++)
                {
                    Assert.Equal(a[i].V4, b[i].V4);
                    Assert.Equal(a[i].V6, b[i].V6);
                    Assert.Equal(a[i].IsService, b[i].IsService);
                    Assert.Equal(a[i].Ptr.Select(p => DnsName.ToDotted(p)), b[i].Ptr.Select(p => DnsName.ToDotted(p)));
                    Assert.Equal(a[i].Srv.Select(x => (x.Port, DnsName.ToDotted(x.Target))), b[i].Srv.Select(x => (x.Port, DnsName.ToDotted(x.Target))));
                }
            }
        }, iter: 500);
    }
}
