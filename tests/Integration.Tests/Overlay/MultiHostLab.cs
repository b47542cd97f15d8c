using System.Collections.Concurrent;
using System.Net;
using Discovery.Api;
using Discovery.Model;
using Discovery.Overlay;
using Discovery.Overlay.Peers;
using Discovery.Platform;
using Discovery.Tests.Support;
using Microsoft.Extensions.Logging;

namespace Discovery.Tests.Overlay;

/// <summary>
/// Several "hosts" in one process: each is a namespace with its own underlay veth on a shared bridge (198.18.77.i/24),
/// its own <see cref="Catalog"/>, <see cref="OverlayService"/> (VXLAN devices created in that namespace) and
/// <see cref="PeerProgrammer"/>. A <see cref="CatalogReplicator"/> stands in for gossip. Everything lives under one
/// <see cref="KernelScope"/> prefix and is removed on dispose.
/// </summary>
public sealed class MultiHostLab : IAsyncDisposable
{
    public const string Network = "web";
    public const string Subnet = "198.19.77.0/24";

    private readonly KernelScope _k = new();
    private readonly List<NetNs> _containers = [];
    private CatalogReplicator? _replicator;
    private NetNs? _underlay;

    private MultiHostLab() { }

    public IReadOnlyList<LabHost> Hosts { get; private set; } = [];

    public LabHost this[int i] => Hosts[i - 1];

    /// <summary>Waits until every catalog stores the same entries (after a change made outside <see cref="AttachAsync"/>).</summary>
    public Task WaitConvergedAsync() => _replicator!.WaitConvergedAsync(TimeSpan.FromSeconds(5));

    /// <summary>What every component logged at Warning or above, for failure messages and "nothing went wrong" checks.</summary>
    public ConcurrentQueue<string> Warnings { get; } = new();

    public string Prefix => _k.Prefix;

    /// <summary>Builds the underlay and <paramref name="hosts"/> hosts h1..hN, creates network "web" on h1 and starts every programmer.</summary>
    public static async Task<MultiHostLab> StartAsync(int hosts)
    {
        var lab = new MultiHostLab();
        try
        {
            await lab.BuildAsync(hosts);
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    private async Task BuildAsync(int count)
    {
        var underlay = _underlay = _k.CreateNetNs("u");
        var unl = _k.Netlink(underlay);
        unl.CreateBridge("ubr");
        unl.SetLink("ubr", up: true);
        var hosts = new List<LabHost>();
        for (var i = 1; i <= count; i++)
        {
            var hostNs = _k.CreateNetNs($"h{i}");
            unl.CreateVeth($"u{i}", "eth0", hostNs);
            unl.SetLink($"u{i}", master: "ubr", up: true);
            var hnl = _k.Netlink(hostNs);
            var vtep = IPAddress.Parse($"198.18.77.{i}");
            hnl.AddAddress("eth0", vtep, 24);
            hnl.SetLink("eth0", up: true);
            hnl.SetLink("lo", up: true);
            hosts.Add(new LabHost(this, $"h{i}", hostNs, vtep, _k.Prefix));
        }
        Hosts = hosts;
        _replicator = new CatalogReplicator(hosts.Select(h => h.Catalog).ToList());
        await this[1].Service.CreateNetworkAsync(new CreateNetworkRequest(Network, Subnet), CancellationToken.None);
        await _replicator.WaitConvergedAsync(TimeSpan.FromSeconds(5));
        foreach (var h in hosts) await h.StartProgrammerAsync();
    }

    /// <summary>A container namespace "{prefix}{name}" (removed on dispose).</summary>
    public string Container(string name)
    {
        _containers.Add(_k.CreateNetNs(name));
        return _k.Name(name);
    }

    /// <summary>A namespace on the underlay that is no lab host (an outside client): eth0 with <paramref name="address"/>/24
    /// on the underlay bridge. Removed on dispose.</summary>
    public NetNs OutsideClient(string name, IPAddress address)
    {
        var ns = _k.CreateNetNs(name);
        var unl = _k.Netlink(_underlay);
        unl.CreateVeth("o" + name, "eth0", ns);
        unl.SetLink("o" + name, master: "ubr", up: true);
        var nl = _k.Netlink(ns);
        nl.AddAddress("eth0", address, 24);
        nl.SetLink("eth0", up: true);
        nl.SetLink("lo", up: true);
        return ns;
    }

    /// <summary>Attaches a new container namespace to "web" (or <paramref name="network"/>) on <paramref name="host"/> (as a
    /// task of <paramref name="service"/>, if given) and waits until every catalog has the record.</summary>
    public async Task<EndpointRecord> AttachAsync(LabHost host, string name, string? service = null, string network = Network)
    {
        var ep = await host.Service.AttachAsync(new AttachRequest(Container(name), network, name, Service: service), CancellationToken.None);
        await _replicator!.WaitConvergedAsync(TimeSpan.FromSeconds(5));
        return ep;
    }

    internal ILogger<T> Logger<T>(string node) => new LabLogger<T>(node, Warnings);

    public async ValueTask DisposeAsync()
    {
        var errors = new List<Exception>();
        foreach (var h in Hosts)
        {
            try { await h.StopProgrammerAsync(); }
            catch (Exception ex) { errors.Add(ex); }
        }
        if (_replicator is not null)
        {
            try { await _replicator.DisposeAsync(); }
            catch (Exception ex) { errors.Add(ex); }
        }
        foreach (var c in _containers) c.Dispose();
        try { _k.Dispose(); }
        catch (Exception ex) { errors.Add(ex); }
        if (errors.Count > 0) throw new AggregateException("multi-host lab cleanup failed", errors);
    }

    private sealed class LabLogger<T>(string node, ConcurrentQueue<string> warnings) : ILogger<T>
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) warnings.Enqueue($"{node} {typeof(T).Name} {logLevel}: {formatter(state, exception)}");
        }
    }
}

/// <summary>One host of the lab: its namespace, catalog, overlay service and peer programmer.</summary>
public sealed class LabHost
{
    private readonly MultiHostLab _lab;

    internal LabHost(MultiHostLab lab, string node, NetNs hostNs, IPAddress vtep, string prefix)
    {
        _lab = lab;
        Node = node;
        HostNs = hostNs;
        Vtep = vtep;
        Catalog = new Catalog(node);
        Options = new OverlayOptions
        {
            Node = node, NetnsPrefix = prefix, Vtep = vtep, HostNamespace = hostNs, ClaimSettle = TimeSpan.FromMilliseconds(100),
        };
        Service = new OverlayService(Catalog, Options, TimeProvider.System, () => { }, lab.Logger<OverlayService>(node));
    }

    public string Node { get; }

    public NetNs HostNs { get; }

    public IPAddress Vtep { get; }

    public Catalog Catalog { get; }

    public OverlayOptions Options { get; }

    public OverlayService Service { get; }

    public PeerProgrammer? Programmer { get; private set; }

    /// <summary>Every report of the current programmer, in order.</summary>
    public ConcurrentQueue<PeerSyncReport> Reports { get; } = new();

    /// <summary>The overlay namespace of "web" on this host.</summary>
    public string OverlayNs => Service.Kernel.Names.NetworkNamespace(MultiHostLab.Network);

    /// <summary>Starts a fresh programmer, as a restarted agent would; returns after its first pass.</summary>
    public async Task StartProgrammerAsync()
    {
        if (Programmer is not null) throw new InvalidOperationException($"{Node}: programmer already running");
        Reports.Clear();
        var programmer = new PeerProgrammer(Catalog, Service.Kernel, Options, _lab.Logger<PeerProgrammer>(Node),
            settings: new PeerProgrammerOptions { RetryDelay = TimeSpan.FromMilliseconds(200) });
        programmer.Synced += Reports.Enqueue;
        await programmer.StartAsync(CancellationToken.None);
        Programmer = programmer;
    }

    public async Task StopProgrammerAsync()
    {
        if (Programmer is null) return;
        var p = Programmer;
        Programmer = null;
        await p.StopAsync();
    }
}
