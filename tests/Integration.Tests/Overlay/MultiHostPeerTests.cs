using System.Collections.Immutable;
using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Discovery.Api;
using Discovery.Model;
using Discovery.Overlay;
using Discovery.Platform;
using Discovery.Tests.Support;
using Xunit;
using Xunit.Abstractions;
using Discovery.Testing;

namespace Discovery.Tests.Overlay;

/// <summary>
/// Peer programming across hosts, on the real kernel: three host namespaces on an underlay bridge, one catalog each
/// (replicated in-process), a container on each host, and the FDB/neighbor/flood entries each vxlan0 ends up with.
/// </summary>
public sealed class MultiHostPeerTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Propagation = TimeSpan.FromSeconds(1);

    private MultiHostLab _lab = null!; // set by InitializeAsync
    private readonly Dictionary<string, EndpointRecord> _eps = [];

    public async Task InitializeAsync() => _lab = await MultiHostLab.StartAsync(3);

    public async Task DisposeAsync()
    {
        if (_lab is null) return; // StartAsync failed and cleaned up after itself
        foreach (var w in _lab.Warnings) output.WriteLine(w);
        await _lab.DisposeAsync();
    }

    private async Task AttachAllAsync()
    {
        foreach (var i in new[] { 1, 2, 3 }) _eps[$"c{i}"] = await _lab.AttachAsync(_lab[i], $"c{i}");
    }

    /// <summary>What vxlan0 on <paramref name="host"/> must hold for the given remote endpoints: sorted lines, duplicates kept.</summary>
    private static (List<string> Fdb, List<string> Neigh) Expected(LabHost host, IEnumerable<EndpointRecord> endpoints)
    {
        var remote = endpoints.Where(e => e.Node != host.Node).ToList();
        var fdb = remote.Select(e => $"{e.Mac} dst {e.Vtep} permanent")
            .Concat(remote.Select(e => e.Vtep).Distinct().Select(v => $"00:00:00:00:00:00 dst {v} permanent"))
            .Order(StringComparer.Ordinal).ToList();
        var neigh = remote.Select(e => $"{e.Address} lladdr {e.Mac} PERMANENT").Order(StringComparer.Ordinal).ToList();
        return (fdb, neigh);
    }

    /// <summary>vxlan0's own FDB and its neighbor table as `bridge` and `ip` print them.</summary>
    private static (List<string> Fdb, List<string> Neigh) Actual(LabHost host)
    {
        var fdb = Cli.Json("bridge", "-n", host.OverlayNs, "fdb", "show", "dev", "vxlan0").EnumerateArray()
            .Where(f => f.GetProperty("flags").EnumerateArray().Any(x => x.GetString() == "self"))
            .Select(f => $"{f.GetProperty("mac").GetString()} dst {(f.TryGetProperty("dst", out var d) ? d.GetString() : "-")} {(f.TryGetProperty("state", out var s) ? s.GetString() : "-")}")
            .Order(StringComparer.Ordinal).ToList();
        var neigh = Cli.Json("ip", "-n", host.OverlayNs, "neigh", "show", "dev", "vxlan0").EnumerateArray()
            .Select(n => $"{n.GetProperty("dst").GetString()} lladdr {(n.TryGetProperty("lladdr", out var l) ? l.GetString() : "-")} {string.Join(',', n.GetProperty("state").EnumerateArray().Select(x => x.GetString()))}")
            .Order(StringComparer.Ordinal).ToList();
        return (fdb, neigh);
    }

    private static void AssertEntries(LabHost host, IEnumerable<EndpointRecord> endpoints)
    {
        var expected = Expected(host, endpoints);
        var actual = Actual(host);
        Assert.Equal(expected.Fdb, actual.Fdb);
        Assert.Equal(expected.Neigh, actual.Neigh);
    }

    /// <summary>
    /// Polls every host's vxlan0 through netlink (in-process, so the poll itself costs microseconds and the measured
    /// time is the programmers' time) until it holds the expected entries; then checks the same with `bridge` and `ip`
    /// as independent observers. Returns how long the match took; fails with the difference after <paramref name="within"/>.
    /// </summary>
    /// <param name="since">Measures from this clock (started before the action under test); default: from the call.</param>
    private Task<TimeSpan> WaitForEntriesAsync(IReadOnlyList<LabHost> hosts, IReadOnlyList<EndpointRecord> endpoints, TimeSpan within, Stopwatch? since = null) =>
        WaitForAsync(hosts.Select(h => (h, Expected(h, endpoints))).ToList(), within, since);

    private async Task<TimeSpan> WaitForAsync(IReadOnlyList<(LabHost Host, (List<string> Fdb, List<string> Neigh) Expected)> wanted, TimeSpan within, Stopwatch? since = null)
    {
        var handles = wanted.Select(w => NetNs.Open(w.Host.OverlayNs)).ToList();
        var netlinks = new List<Rtnetlink>();
        try
        {
            netlinks.AddRange(handles.Select(ns => Rtnetlink.Open(ns)));
            var clock = since ?? Stopwatch.StartNew();
            bool AllMatch() => wanted.Select((w, i) => (Now: Netlink(netlinks[i]), w.Expected))
                .All(p => p.Now.Fdb.SequenceEqual(p.Expected.Fdb) && p.Now.Neigh.SequenceEqual(p.Expected.Neigh));
            await Eventually.True(AllMatch, within - clock.Elapsed);
            var elapsed = clock.Elapsed;
            output.WriteLine($"entries matched on {string.Join(",", wanted.Select(w => w.Host.Node))} after {elapsed.TotalMilliseconds:F0} ms");
            foreach (var (host, expected) in wanted)
            {
                var actual = Actual(host);
                Assert.Equal(expected.Fdb, actual.Fdb);
                Assert.Equal(expected.Neigh, actual.Neigh);
            }
            return elapsed;
        }
        finally
        {
            foreach (var nl in netlinks) nl.Dispose();
            foreach (var ns in handles) ns.Dispose();
        }
    }

    // The same lines as Actual, read through netlink.
    private static (List<string> Fdb, List<string> Neigh) Netlink(Rtnetlink nl)
    {
        static string State(ushort state) => (state & NeighborState.Permanent) != 0 ? "permanent" : $"state-{state:x}";
        var fdb = nl.GetFdb("vxlan0").Select(f => $"{MacAddress.Format(f.Mac)} dst {f.Destination?.ToString() ?? "-"} {State(f.State)}").Order(StringComparer.Ordinal).ToList();
        var neigh = nl.GetNeighbors("vxlan0").Select(n => $"{n.Address} lladdr {MacAddress.Format(n.Mac)} {State(n.State).ToUpperInvariant()}").Order(StringComparer.Ordinal).ToList();
        return (fdb, neigh);
    }

    private static bool Ping(string fromNs, IPAddress to) =>
        Cli.TryRun("ip", "netns", "exec", fromNs, "ping", "-c1", "-W1", to.ToString()).ExitCode == 0;

    private void AssertPings(string fromNs, EndpointRecord to)
    {
        // The first echo may race the container's own ARP; three tries, one second each at most.
        var ok = Enumerable.Range(0, 3).Any(_ => Ping(fromNs, to.Address));
        Assert.True(ok, $"{fromNs} cannot ping {to.Name} ({to.Address}) on {to.Node}");
    }

    private void AssertNoProgrammingFailures()
    {
        Assert.All(_lab.Hosts, h => Assert.All(h.Reports, r => Assert.Equal(0, r.Failures)));
        Assert.DoesNotContain(_lab.Warnings, w => w.Contains(nameof(Discovery.Overlay.Peers.PeerProgrammer)));
    }

    [Fact]
    public async Task Containers_on_different_hosts_ping_each_other_across_vxlan()
    {
        await AttachAllAsync();
        await WaitForEntriesAsync(_lab.Hosts, [.. _eps.Values], Propagation);
        foreach (var (from, to) in new[] { ("c1", "c2"), ("c1", "c3"), ("c2", "c3"), ("c3", "c1"), ("c2", "c1"), ("c3", "c2") })
            AssertPings(_lab.Prefix + from, _eps[to]);
        AssertNoProgrammingFailures();
    }

    [Fact]
    public async Task Each_vxlan0_holds_exactly_the_fdb_neighbor_and_flood_entries_of_the_remote_endpoints()
    {
        await AttachAllAsync();
        _eps["c4"] = await _lab.AttachAsync(_lab[2], "c4"); // a second endpoint behind the same VTEP: one more FDB entry, no second flood entry
        await WaitForEntriesAsync(_lab.Hosts, [.. _eps.Values], Propagation);
        foreach (var h in _lab.Hosts)
        {
            AssertEntries(h, _eps.Values);
            output.WriteLine($"{h.Node}: {string.Join(" | ", Actual(h).Fdb)}");
        }
        Assert.Equal(3, _lab[1].Programmer!.Peers[MultiHostLab.Network]);
        Assert.Equal(2, _lab[2].Programmer!.Peers[MultiHostLab.Network]);
        Assert.Equal(3, _lab[3].Programmer!.Peers[MultiHostLab.Network]);
        AssertNoProgrammingFailures();
    }

    [Fact]
    public async Task A_host_gets_a_namespace_and_entries_when_its_first_endpoint_attaches()
    {
        _eps["c1"] = await _lab.AttachAsync(_lab[1], "c1");
        _eps["c2"] = await _lab.AttachAsync(_lab[2], "c2");
        Assert.False(NetNsExists(_lab[3].OverlayNs), "h3 has no endpoint yet, so no namespace");
        await WaitForEntriesAsync([_lab[1], _lab[2]], [.. _eps.Values], Propagation);

        _eps["c3"] = await _lab.AttachAsync(_lab[3], "c3");
        var took = await WaitForEntriesAsync(_lab.Hosts, [.. _eps.Values], Propagation);
        Assert.True(took < Propagation);
        AssertPings(_lab.Prefix + "c3", _eps["c1"]);
        AssertNoProgrammingFailures();
    }

    [Fact]
    public async Task Detach_on_one_host_removes_its_entries_from_the_others_within_a_second()
    {
        await AttachAllAsync();
        await WaitForEntriesAsync(_lab.Hosts, [.. _eps.Values], Propagation);

        var clock = Stopwatch.StartNew();
        await _lab[1].Service.DetachAsync(new DetachRequest(_lab.Prefix + "c1", MultiHostLab.Network), CancellationToken.None);
        var rest = _eps.Values.Where(e => e.Name != "c1").ToList();
        var took = await WaitForEntriesAsync([_lab[2], _lab[3]], rest, Propagation, clock);
        Assert.True(took < Propagation, $"took {took.TotalMilliseconds} ms");
        Assert.False(Ping(_lab.Prefix + "c2", _eps["c1"].Address));
        AssertNoProgrammingFailures();
    }

    [Fact]
    public async Task When_the_last_local_endpoint_leaves_the_hosts_vxlan0_is_emptied_and_its_peer_count_dropped()
    {
        await AttachAllAsync();
        await WaitForEntriesAsync(_lab.Hosts, [.. _eps.Values], Propagation);
        Assert.Equal(2, _lab[2].Programmer!.Peers[MultiHostLab.Network]);

        await _lab[2].Service.DetachAsync(new DetachRequest(_lab.Prefix + "c2", MultiHostLab.Network), CancellationToken.None);
        var rest = _eps.Values.Where(e => e.Name != "c2").ToList();
        await WaitForEntriesAsync([_lab[1], _lab[3]], rest, Propagation);
        // h2 keeps its namespace (OverlayService owns it) but has no one to serve: no entries at all.
        await WaitForAsync([(_lab[2], ([], []))], Propagation);
        Assert.True(NetNsExists(_lab[2].OverlayNs));
        Assert.False(_lab[2].Programmer!.Peers.ContainsKey(MultiHostLab.Network));
        AssertNoProgrammingFailures();
    }

    [Fact]
    public async Task Hiding_a_node_removes_its_entries_and_showing_it_again_restores_them()
    {
        await AttachAllAsync();
        await WaitForEntriesAsync(_lab.Hosts, [.. _eps.Values], Propagation);
        var observers = new[] { _lab[1], _lab[3] };

        var clock = Stopwatch.StartNew();
        foreach (var h in observers) h.Catalog.SetNodeHidden("h2", true);
        var withoutH2 = _eps.Values.Where(e => e.Node != "h2").ToList();
        var took = await WaitForEntriesAsync(observers, withoutH2, Propagation, clock);
        Assert.True(took < Propagation);
        Assert.False(Ping(_lab.Prefix + "c1", _eps["c2"].Address));

        clock.Restart();
        foreach (var h in observers) h.Catalog.SetNodeHidden("h2", false);
        took = await WaitForEntriesAsync(observers, [.. _eps.Values], Propagation, clock);
        Assert.True(took < Propagation);
        AssertPings(_lab.Prefix + "c1", _eps["c2"]);
        AssertNoProgrammingFailures();
    }

    [Fact]
    public async Task A_restarted_programmer_adopts_the_entries_in_place_without_any_op()
    {
        await AttachAllAsync();
        await WaitForEntriesAsync(_lab.Hosts, [.. _eps.Values], Propagation);
        var before = Actual(_lab[2]);

        await _lab[2].StopProgrammerAsync();
        await _lab[2].StartProgrammerAsync();

        var first = Assert.Single(_lab[2].Reports);
        var web = Assert.Single(first.Networks, n => n.Network == MultiHostLab.Network);
        Assert.True(web.ReadKernel);
        Assert.Equal(0, web.Ops);
        Assert.Equal(before.Fdb, Actual(_lab[2]).Fdb);
        Assert.Equal(before.Neigh, Actual(_lab[2]).Neigh);
        AssertEntries(_lab[2], _eps.Values);
        Assert.Equal(2, _lab[2].Programmer!.Peers[MultiHostLab.Network]);
        AssertNoProgrammingFailures();
    }

    [Fact]
    public async Task A_restarted_programmer_removes_what_changed_while_it_was_down_and_keeps_the_rest()
    {
        await AttachAllAsync();
        await WaitForEntriesAsync(_lab.Hosts, [.. _eps.Values], Propagation);

        await _lab[2].StopProgrammerAsync();
        // While h2's programmer is down: c1 leaves, and someone adds entries no endpoint needs.
        await _lab[1].Service.DetachAsync(new DetachRequest(_lab.Prefix + "c1", MultiHostLab.Network), CancellationToken.None);
        var ns = _lab[2].OverlayNs;
        Cli.Run("bridge", "-n", ns, "fdb", "add", "02:42:de:ad:00:01", "dev", "vxlan0", "dst", "198.18.77.9", "self", "permanent");
        Cli.Run("bridge", "-n", ns, "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan0", "dst", "198.18.77.9", "self", "permanent");
        Cli.Run("ip", "-n", ns, "neigh", "add", "198.19.77.250", "lladdr", "02:42:de:ad:00:01", "dev", "vxlan0", "nud", "permanent");
        // h2's catalog has c1's detach: what its programmer would act on has arrived, and the kernel must not have moved.
        await Eventually.Until(() => _lab[2].Catalog.Get(Tables.Endpoints, _eps["c1"].Id) is null or { Tombstone: true }, TimeSpan.FromSeconds(5), "c1's detach reaching h2's catalog");
        Assert.Equal(3 + 2 + 1, Actual(_lab[2]).Fdb.Count); // c1's and c3's entries, plus the two strays
        Assert.Equal(2 + 1, Actual(_lab[2]).Neigh.Count);

        await _lab[2].StartProgrammerAsync();
        // Right after start, without waiting: the first pass read the kernel and fixed it.
        AssertEntries(_lab[2], _eps.Values.Where(e => e.Name != "c1"));
        var web = Assert.Single(Assert.Single(_lab[2].Reports).Networks, n => n.Network == MultiHostLab.Network);
        // c1's FDB, neighbor and flood entry, and the three strays: six deletes; h3's entries were adopted, not rewritten.
        Assert.Equal(6, web.Ops);
        AssertPings(_lab.Prefix + "c2", _eps["c3"]);
        AssertNoProgrammingFailures();
    }

    [Fact]
    public async Task A_burst_of_remote_endpoints_is_coalesced_into_a_few_batches()
    {
        await AttachAllAsync();
        await WaitForEntriesAsync(_lab.Hosts, [.. _eps.Values], Propagation);
        foreach (var h in _lab.Hosts) h.Reports.Clear();

        // 100 endpoints of a node "h9" that exists only in the catalogs, merged into h1's catalog in one go.
        var vtep = IPAddress.Parse("198.18.77.9");
        // Addresses the lab's containers do not hold: IPAM spreads hosts over the subnet's blocks.
        var taken = _eps.Values.Select(e => e.Address).ToHashSet();
        var free = Enumerable.Range(2, 253).Select(i => IPAddress.Parse($"198.19.77.{i}")).Where(a => !taken.Contains(a)).Take(100).ToList();
        var burst = Enumerable.Range(100, 100).Select(i =>
        {
            var ip = free[i - 100];
            return new EndpointRecord(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"h9/{i}"))), MultiHostLab.Network, $"b{i}",
                ImmutableArray<string>.Empty, null, ip, null, MacAddress.Format(MacAddress.FromIPv4(ip)), "h9", vtep, "", "eth0",
                ImmutableArray<ServicePort>.Empty, false);
        }).ToList();
        var clock = Stopwatch.StartNew();
        var lamport = _lab[1].Catalog.Clock;
        foreach (var ep in burst)
            Assert.True(_lab[1].Catalog.Merge(new CatalogEntry(Tables.Endpoints, ep.Id, "h9", ++lamport, false, RecordCodec.Encode(ep))));
        var took = await WaitForEntriesAsync(_lab.Hosts, [.. _eps.Values, .. burst], TimeSpan.FromSeconds(2), clock);

        var passes = _lab[1].Reports.Where(r => r.Ops > 0).ToList();
        output.WriteLine($"100 remote endpoints on 3 hosts in {took.TotalMilliseconds:F0} ms; h1 applied them in {passes.Count} passes: {string.Join(", ", passes.Select(p => p.Ops))} ops");
        Assert.Equal(100 + 100 + 1, passes.Sum(p => p.Ops)); // FDB and neighbor per endpoint, one flood entry for the new VTEP
        Assert.InRange(passes.Count, 1, 10);
        Assert.Equal(102, _lab[1].Programmer!.Peers[MultiHostLab.Network]);
        AssertNoProgrammingFailures();
    }

    private static bool NetNsExists(string name) => File.Exists(Path.Combine("/run/netns", name));
}
