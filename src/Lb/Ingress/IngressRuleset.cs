using System.Globalization;
using System.Net;
using System.Text;
using Discovery.Lb.Selection;
using Discovery.Model;

namespace Discovery.Lb.Ingress;

/// <summary>
/// Renders <see cref="IngressState"/> as the host namespace's one ingress table: fixed chains, and sets and maps whose
/// elements carry everything that changes, so a change after the first load is element updates only (no rule change,
/// no re-validation of the table). Pure: unit tests check the text.
/// </summary>
/// <remarks>
/// <para>Published ports are matched in prerouting (traffic from outside and from containers through their leg) and
/// output (the host's own clients), on every local address but 127/8 for ports without an address
/// (<c>fib daddr type local</c>, as kube-proxy's NodePorts), or on their own address. The backend is
/// <c>l4proto . port . slot</c> looked up in a map filled with the tasks, where the port's lb-core slot tier
/// (<see cref="SlotTiers"/>) gives M and how a flow picks its slot: numgen random for random balancing, jhash of the
/// source for consistent balancing (Maglev slots from the service's seed, the VIP's own filling).</para>
/// <para>postrouting SNATs (masquerade, so to the leg's own address) only what must come back through this host:
/// connections to tasks on other hosts, hairpin connections that came in from a leg, and connections from 127/8.
/// Everything else keeps the client's address.</para>
/// <para>Client-ip affinity (ports of a service with <c>--affinity client-ip</c>): the first packet of a connection
/// looks up <c>client . host address . proto . published port</c> in one dynamic map, <c>aff</c>, before the slots; its
/// first packet in postrouting records the backend chosen, with the service's timeout class (a verdict map sends
/// the port to the class's chain: a timeout is a constant in the rule, so one chain per class, never per service).
/// An entry whose backend left the port would pin its client to it until it expires, and its clients are not known
/// here (anyone outside): so whenever a backend leaves a port with affinity (removed, draining or unhealthy), the
/// flows worker reads this map once and deletes the entries that point to it (<see cref="Programming.ConntrackFlowCleanup"/>).
/// Keyed by backend rather than by slot because a slot holds no identity across changes (the exact tiers renumber
/// when a task comes or goes, so a slot-keyed client would move when another task leaves), and nft cannot look a
/// slot up and then its backend in one rule; and deleted per backend rather than flushed per port because clients
/// on the backends that stay keep their affinity. The per-host key also means each host keeps its own affinity, as
/// each sandbox does east-west.</para>
/// <para>Containers gain no reach through a leg: forward admits from a leg only connections this table DNATed (the
/// requests of hairpin clients and the replies of tasks), and input only replies.</para>
/// </remarks>
public static class IngressRuleset
{
    public const string Legs = "legs", Remote = "remote", AnyPublished = "any_published", AddrPublished = "addr_published",
        AnyRejected = "any_rejected", AddrRejected = "addr_rejected", AnyBackends = "any_backends", AddrBackends = "addr_backends",
        Affinity = "aff", AnyAffinity = "any_affinity", AddrAffinity = "addr_affinity", AnyAffinityClass = "any_affinity_class",
        AddrAffinityClass = "addr_affinity_class";

    /// <summary>Entries the affinity map may hold (clients × ports with affinity on this host); past it a new client
    /// gets no affinity (the kernel refuses the update) until entries expire.</summary>
    public const int AffinityEntries = 262_144;

    /// <summary>The chain that records a connection's backend with one affinity timeout class.</summary>
    public static string AffinityChain(int classSeconds) => "affinity_" + Rendering.AffinityClasses.SetName(classSeconds);

    /// <summary>The set of ports without an address (any_) or with one (addr_) in lb-core's slot tier.</summary>
    public static string TierSet(bool addr, SlotTier tier) => (addr ? "addr_" : "any_") + tier.Name;

    // The slot of a flow in a tier: as in the sandbox table (random, or jhash of the source with one fixed seed, the
    // service's seed being in the Maglev filling), so a consistent port maps one flow to the same task on every host.
    private static string SlotOf(SlotTier tier) => tier.Balance == BalanceMode.Consistent
        ? $"jhash ip saddr . th sport mod {Num(tier.Slots)} seed 0x0"
        : $"numgen random mod {Num(tier.Slots)}";

    /// <summary>The whole table with its elements, replacing any table of that name in the same transaction.</summary>
    public static string Render(string table, IngressState state)
    {
        var sb = new StringBuilder();
        // add + delete + add: one transaction that works whether or not the table exists, and never leaves it half.
        sb.Append("add table ip ").Append(table).Append('\n');
        sb.Append("delete table ip ").Append(table).Append('\n');
        var tierSets = new StringBuilder();
        var anyRules = new StringBuilder();
        var addrRules = new StringBuilder();
        var classChains = new StringBuilder();
        foreach (var s in Rendering.AffinityClasses.Seconds)
        {
            // `meta l4proto P` gives `ct original proto-dst` its type inside the key (without it nft refuses the concatenation).
            classChains.Append($"  chain {AffinityChain(s)} {{\n");
            foreach (var proto in new[] { "tcp", "udp" })
                classChains.Append($"    meta l4proto {proto} update @{Affinity} {{ ip saddr . ct original ip daddr . meta l4proto . ct original proto-dst timeout {Num(s)}s : ip daddr . th dport }}\n");
            classChains.Append("  }\n");
        }
        foreach (var tier in SlotTiers.All)
        {
            tierSets.Append($"  set {TierSet(false, tier)} {{ typeof meta l4proto . th dport; }}\n");
            tierSets.Append($"  set {TierSet(true, tier)} {{ typeof ip daddr . meta l4proto . th dport; }}\n");
            addrRules.Append($"    ip daddr . meta l4proto . th dport @{TierSet(true, tier)} dnat ip to ip daddr . meta l4proto . th dport . {SlotOf(tier)} map @{AddrBackends}\n");
            anyRules.Append($"    meta l4proto . th dport @{TierSet(false, tier)} dnat ip to meta l4proto . th dport . {SlotOf(tier)} map @{AnyBackends}\n");
        }
        // Keys are typed with `th dport`, never `tcp dport`: nft 1.0.6 then compiles the dnat's own key as `tcp dport`,
        // and the lookup of a UDP packet misses (checked here: UDP was never DNATed). One rule per lb-core slot tier, in
        // chains entered only for a published port, so other traffic meets two lookups.
        sb.Append($$"""
            table ip {{table}} {
              set {{Legs}} { type ifname; }
              set {{Remote}} { type ipv4_addr; }
              set {{AnyPublished}} { typeof meta l4proto . th dport; }
              set {{AddrPublished}} { typeof ip daddr . meta l4proto . th dport; }
              set {{AnyRejected}} { typeof meta l4proto . th dport; }
              set {{AddrRejected}} { typeof ip daddr . meta l4proto . th dport; }
            {{tierSets}}  map {{AnyBackends}} { typeof meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport; }
              map {{AddrBackends}} { typeof ip daddr . meta l4proto . th dport . numgen random mod 2 : ip daddr . th dport; }
              set {{AnyAffinity}} { typeof meta l4proto . th dport; }
              set {{AddrAffinity}} { typeof ip daddr . meta l4proto . th dport; }
              map {{AnyAffinityClass}} { typeof meta l4proto . th dport : verdict; }
              map {{AddrAffinityClass}} { typeof ip daddr . meta l4proto . th dport : verdict; }
              map {{Affinity}} { typeof ip saddr . ip daddr . meta l4proto . th dport : ip daddr . th dport; size {{AffinityEntries}}; flags dynamic,timeout; timeout 1d; }
            {{classChains}}  chain affinity {
                meta l4proto tcp meta l4proto . ct original proto-dst vmap @{{AnyAffinityClass}}
                meta l4proto udp meta l4proto . ct original proto-dst vmap @{{AnyAffinityClass}}
                meta l4proto tcp ct original ip daddr . meta l4proto . ct original proto-dst vmap @{{AddrAffinityClass}}
                meta l4proto udp ct original ip daddr . meta l4proto . ct original proto-dst vmap @{{AddrAffinityClass}}
              }
              chain prerouting {
                type nat hook prerouting priority dstnat; policy accept;
                jump published
              }
              chain output {
                type nat hook output priority -100; policy accept;
                jump published
              }
              chain published {
                ip daddr . meta l4proto . th dport @{{AddrPublished}} jump addr_port
                fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport @{{AnyPublished}} jump any_port
              }
              chain addr_port {
                ip daddr . meta l4proto . th dport @{{AddrAffinity}} dnat ip to ip saddr . ip daddr . meta l4proto . th dport map @{{Affinity}}
            {{addrRules}}  }
              chain any_port {
                meta l4proto . th dport @{{AnyAffinity}} dnat ip to ip saddr . ip daddr . meta l4proto . th dport map @{{Affinity}}
            {{anyRules}}  }
              chain postrouting {
                type nat hook postrouting priority srcnat; policy accept;
                oifname != @{{Legs}} return
                ct status dnat jump affinity
                ct status dnat ip daddr @{{Remote}} masquerade
                ct status dnat iifname @{{Legs}} masquerade
                ct status dnat ip saddr 127.0.0.0/8 masquerade
              }
              chain forward {
                type filter hook forward priority filter; policy accept;
                iifname @{{Legs}} ct status dnat accept
                iifname @{{Legs}} drop
              }
              chain input {
                type filter hook input priority filter; policy accept;
                iifname @{{Legs}} ct direction reply accept
                iifname @{{Legs}} ct state related accept
                iifname @{{Legs}} drop
                ip daddr . meta l4proto . th dport @{{AddrRejected}} meta l4proto tcp reject with tcp reset
                ip daddr . meta l4proto . th dport @{{AddrRejected}} reject
                fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport @{{AnyRejected}} meta l4proto tcp reject with tcp reset
                fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport @{{AnyRejected}} reject
              }
            }

            """);
        foreach (var (name, elements) in Elements(state))
            if (elements.Count > 0)
                sb.Append("add element ip ").Append(table).Append(' ').Append(name).Append(" { ")
                    .AppendJoin(", ", elements.Select(e => e.Value is null ? e.Key : $"{e.Key} : {e.Value}")).Append(" }\n");
        return sb.ToString();
    }

    /// <summary>Every set and map of the table with its elements: key, and value for maps (null for sets).</summary>
    public static SortedDictionary<string, SortedDictionary<string, string?>> Elements(IngressState state)
    {
        var all = new SortedDictionary<string, SortedDictionary<string, string?>>(StringComparer.Ordinal);
        foreach (var n in new[] { Legs, Remote, AnyPublished, AddrPublished, AnyRejected, AddrRejected, AnyBackends, AddrBackends,
                     AnyAffinity, AddrAffinity, AnyAffinityClass, AddrAffinityClass }
                     .Concat(SlotTiers.All.SelectMany(t => new[] { TierSet(false, t), TierSet(true, t) })))
            all[n] = new SortedDictionary<string, string?>(StringComparer.Ordinal);
        foreach (var leg in state.Legs) all[Legs][$"\"{leg}\""] = null;
        foreach (var p in state.Ports)
        {
            var key = p.HostIp is null ? $"{p.Protocol} . {Num(p.Port)}" : $"{p.HostIp} . {p.Protocol} . {Num(p.Port)}";
            if (p.Backends.IsEmpty)
            {
                all[p.HostIp is null ? AnyRejected : AddrRejected][key] = null;
                continue;
            }
            all[p.HostIp is null ? AnyPublished : AddrPublished][key] = null;
            all[TierSet(p.HostIp is not null, p.Tier)][key] = null;
            var map = all[p.HostIp is null ? AnyBackends : AddrBackends];
            for (var s = 0; s < p.Slots.Length; s++)
            {
                var b = p.Backends[p.Slots[s]];
                map[$"{key} . {Num(s)}"] = $"{b.Address} . {Num(b.Port)}";
            }
            foreach (var b in p.Backends.Where(b => b.Remote)) all[Remote][b.Address.ToString()] = null;
            if (p.Affinity > 0)
            {
                all[p.HostIp is null ? AnyAffinity : AddrAffinity][key] = null;
                all[p.HostIp is null ? AnyAffinityClass : AddrAffinityClass][key] = "jump " + AffinityChain(p.Affinity);
            }
        }
        return all;
    }

    /// <summary>The element updates that turn <paramref name="from"/> into <paramref name="to"/>: deletions first, then
    /// additions (a map key whose value changed is deleted and added again). Empty when nothing changed.</summary>
    public static string Diff(string table, IngressState from, IngressState to)
    {
        var a = Elements(from);
        var b = Elements(to);
        var deletes = new StringBuilder();
        var adds = new StringBuilder();
        foreach (var (name, old) in a)
        {
            var now = b[name];
            var gone = old.Where(e => !now.TryGetValue(e.Key, out var v) || v != e.Value).Select(e => e.Key).ToList();
            var come = now.Where(e => !old.TryGetValue(e.Key, out var v) || v != e.Value)
                .Select(e => e.Value is null ? e.Key : $"{e.Key} : {e.Value}").ToList();
            if (gone.Count > 0) deletes.Append($"delete element ip {table} {name} {{ ").AppendJoin(", ", gone).Append(" }\n");
            if (come.Count > 0) adds.Append($"add element ip {table} {name} {{ ").AppendJoin(", ", come).Append(" }\n");
        }
        return deletes.Append(adds).ToString();
    }

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
