using Discovery.Api;
using Discovery.Overlay;
using Discovery.Platform;
using Xunit;
using Xunit.Abstractions;

namespace Discovery.Tests.Overlay;

/// <summary>
/// `network create` on two hosts at the same moment, through the real overlay services and kernel of the in-process
/// multi-host lab (catalogs replicated within milliseconds, claims settle in 100 ms). Before the claims component,
/// both hosts picked the same VNI and subnet from what their catalogs showed, and both created a same-named network.
/// </summary>
public sealed class ConcurrentNetworkCreateTests(ITestOutputHelper output) : IAsyncLifetime
{
    private MultiHostLab _lab = null!; // set by InitializeAsync

    public async Task InitializeAsync() => _lab = await MultiHostLab.StartAsync(2);

    public async Task DisposeAsync()
    {
        if (_lab is null) return;
        foreach (var w in _lab.Warnings) output.WriteLine(w);
        await _lab.DisposeAsync();
    }

    /// <summary>Starts both creates together (both threads released by one barrier) and collects each result or error.</summary>
    private async Task<(object H1, object H2)> RaceAsync(CreateNetworkRequest on1, CreateNetworkRequest on2)
    {
        using var start = new Barrier(2);
        async Task<object> Run(LabHost host, CreateNetworkRequest req)
        {
            start.SignalAndWait(TimeSpan.FromSeconds(10));
            try { return await host.Service.CreateNetworkAsync(req, CancellationToken.None); }
            catch (OverlayException ex) { return ex; }
        }
        var t1 = Task.Run(() => Run(_lab[1], on1));
        var t2 = Task.Run(() => Run(_lab[2], on2));
        return (await t1, await t2);
    }

    [Fact]
    public async Task Two_hosts_creating_different_networks_at_once_get_distinct_vnis_and_subnets()
    {
        var (r1, r2) = await RaceAsync(new CreateNetworkRequest("alpha"), new CreateNetworkRequest("beta"));
        var a = Assert.IsType<Discovery.Model.NetworkSpec>(r1);
        var b = Assert.IsType<Discovery.Model.NetworkSpec>(r2);
        Assert.NotEqual(a.Vni, b.Vni);
        Assert.False(Discovery.Overlay.Ipam.Ipv4.Overlaps(a.Subnet, b.Subnet), $"{a.Subnet} and {b.Subnet} overlap");
        // Both records reach both hosts, and each host holds exactly one network of each name.
        await Discovery.Testing.Eventually.Until(() => _lab.Hosts.All(h => h.Service.Networks().Count(n => n.Name is "alpha" or "beta") == 2),
            TimeSpan.FromSeconds(5), "both networks on both hosts");
        var expected = new[] { a.Vni, b.Vni }.Order().ToArray();
        foreach (var h in _lab.Hosts)
            Assert.Equal(expected, h.Service.Networks().Where(n => n.Name is "alpha" or "beta").Select(n => n.Vni).Order().ToArray());
    }

    [Fact]
    public async Task The_same_name_with_different_parameters_at_once_has_one_winner_and_one_clear_error()
    {
        var (r1, r2) = await RaceAsync(new CreateNetworkRequest("gamma", Vni: 7001), new CreateNetworkRequest("gamma", Vni: 7002));
        var results = new[] { (Host: _lab[1], Result: r1), (Host: _lab[2], Result: r2) };
        var winner = Assert.Single(results, r => r.Result is Discovery.Model.NetworkSpec);
        var loser = Assert.Single(results, r => r.Result is OverlayException);
        var ex = (OverlayException)loser.Result;
        Assert.Equal(OverlayErrorKind.Conflict, ex.Kind);
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Contains($"node {winner.Host.Node}", ex.Message);
        // Nothing half-done on the loser: its kernel has no namespace of its own for gamma, every catalog one record.
        Assert.False(NetNs.Exists(loser.Host.Service.Kernel.Names.NetworkNamespace("gamma")), "the loser created gamma's namespace");
        var spec = (Discovery.Model.NetworkSpec)winner.Result;
        await Discovery.Testing.Eventually.Until(() => _lab.Hosts.All(h => h.Service.Networks().SingleOrDefault(n => n.Name == "gamma")?.Vni == spec.Vni),
            TimeSpan.FromSeconds(5), "the winner's gamma on both hosts");
    }

    [Fact]
    public async Task The_same_name_without_parameters_at_once_converges_to_one_network()
    {
        var (r1, r2) = await RaceAsync(new CreateNetworkRequest("delta"), new CreateNetworkRequest("delta"));
        var a = Assert.IsType<Discovery.Model.NetworkSpec>(r1);
        var b = Assert.IsType<Discovery.Model.NetworkSpec>(r2);
        Assert.Equal(a, b);
    }
}
