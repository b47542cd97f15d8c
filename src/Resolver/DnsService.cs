using System.Net;
using System.Net.Sockets;
using Discovery.Model;
using Discovery.Platform;
using Discovery.Resolver.Answers;
using Discovery.Resolver.Caching;
using Discovery.Resolver.Forwarding;
using Discovery.Resolver.Names;
using Discovery.Resolver.Serving;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Discovery.Resolver;

/// <summary>
/// The embedded resolver of one agent: name tables kept current from the catalog, the local answerer, the cache,
/// the forwarder, and the sockets of every attached sandbox served by one fixed pool of threads. The Daemon creates one and calls <see cref="Attach"/>,
/// <see cref="UpdateNetworks"/> and <see cref="Detach"/> from its attach path.
/// </summary>
public sealed class DnsService : IDisposable
{
    private NameTableUpdater _updater;
    // A fresh watch for a new name table after the updater failed; null when built from one given watch.
    private readonly Func<CatalogWatch>? _newWatch;
    private readonly ResponseCache _cache;
    private readonly LocalAnswerer _answerer;
    private readonly Forwarder _forwarder;
    private readonly QueryEngine _engine;
    internal QueryEngine Engine => _engine;
    private readonly SandboxDns _sandboxes;
    private readonly ServingPool _pool;
    private readonly ILogger _log;
    private readonly Random _seeds;
    private readonly List<SandboxListener> _hostListeners = [];
    private readonly bool _ownsMetrics;

    /// <summary>Watches <paramref name="catalog"/> for endpoints.</summary>
    /// <param name="redirect">Who installs the 127.0.0.11 redirect in sandboxes (the owner of the sandbox table);
    /// null: the resolver's own table.</param>
    public DnsService(Catalog catalog, ResolverOptions options, ILoggerFactory? loggers = null, DnsMetrics? metrics = null, TimeProvider? time = null, Random? random = null, ISandboxRedirect? redirect = null)
        : this(catalog.Watch(), options, loggers, metrics, time, random, redirect) => _newWatch = catalog.Watch;

    /// <summary>Builds its names from <paramref name="watch"/>, which it owns and disposes.</summary>
    public DnsService(CatalogWatch watch, ResolverOptions options, ILoggerFactory? loggers = null, DnsMetrics? metrics = null, TimeProvider? time = null, Random? random = null, ISandboxRedirect? redirect = null)
    {
        Options = options;
        loggers ??= NullLoggerFactory.Instance;
        _log = loggers.CreateLogger("Discovery.Resolver");
        _ownsMetrics = metrics is null;
        Metrics = metrics ?? new DnsMetrics();
        time ??= TimeProvider.System;
        _seeds = random ?? new Random();
        var hostConf = ResolvConf.Load(options.HostResolvConf);
        HostSearchDomains = hostConf.Search;
        var upstreams = options.Upstreams ?? ResolvConf.HostUpstreams(options.HostResolvConf, options.StubUpstreamResolvConf);
        if (upstreams.Count == 0) _log.LogWarning("DNS has no upstream servers; names that are not local get SERVFAIL");
        var answerer = _answerer = new LocalAnswerer(options.TtlSeconds, options.ClusterDomain, options.MaxUdpPayload, options.AdvertisedUdpPayload);
        _updater = new NameTableUpdater(watch, options.ClusterDomain, _log, Metrics, options.FaultPoint);
        _cache = new ResponseCache(options, time, Metrics);
        _forwarder = new Forwarder(options, upstreams, answerer, _cache, Metrics, _log, time);
        _engine = new QueryEngine(options, () => Volatile.Read(ref _updater).Current, answerer, _cache, _forwarder, Metrics);
        _pool = new ServingPool(_engine, options, _log, NextSeed);
        _sandboxes = new SandboxDns(NewListener, options, HostSearchDomains, Metrics, _log, redirect);
        _log.LogInformation("DNS resolver ready: cluster domain {Domain}, TTL {Ttl}, upstreams {Upstreams}",
            options.ClusterDomain, options.Ttl, string.Join(", ", upstreams.Select(u => u.ToString())));
    }

    /// <summary>The settings in force: those given at construction, with what <see cref="Reload"/> changed since.</summary>
    public ResolverOptions Options { get; private set; }
    public DnsMetrics Metrics { get; }
    public IReadOnlyList<IPEndPoint> Upstreams => _forwarder.Upstreams;
    public IReadOnlyList<string> HostSearchDomains { get; }

    /// <summary>
    /// Applies the settings that can change while the resolver runs (a configuration reload): the TTL of local answers,
    /// the upstreams (null reads the host's resolv.conf again), the forward timeout, the in-flight limit and the cache
    /// size. Everything else in <paramref name="next"/> is ignored. Returns one "what: old -> new" text per change.
    /// </summary>
    public IReadOnlyList<string> Reload(ResolverOptions next)
    {
        var changes = new List<string>();
        var now = Options;
        if (next.Ttl != now.Ttl)
        {
            _answerer.Ttl = next.TtlSeconds;
            changes.Add($"dnsTtl {now.Ttl.TotalSeconds}s -> {next.Ttl.TotalSeconds}s");
        }
        var upstreams = next.Upstreams ?? ResolvConf.HostUpstreams(now.HostResolvConf, now.StubUpstreamResolvConf);
        var before = _forwarder.Upstreams;
        if (!before.SequenceEqual(upstreams))
        {
            _forwarder.ReplaceUpstreams(upstreams);
            changes.Add($"dnsUpstreams {List(before)} -> {List(upstreams)}");
        }
        if (next.ForwardTimeout != now.ForwardTimeout)
        {
            _forwarder.ForwardTimeout = next.ForwardTimeout;
            changes.Add($"dnsForwardTimeout {now.ForwardTimeout.TotalSeconds}s -> {next.ForwardTimeout.TotalSeconds}s");
        }
        if (next.MaxInFlight != now.MaxInFlight)
        {
            _forwarder.MaxInFlight = next.MaxInFlight;
            changes.Add($"dnsMaxInFlight {now.MaxInFlight} -> {next.MaxInFlight}");
        }
        if (next.CacheMaxEntries != now.CacheMaxEntries)
        {
            _cache.MaxEntries = next.CacheMaxEntries;
            changes.Add($"dnsCacheMaxEntries {now.CacheMaxEntries} -> {next.CacheMaxEntries}");
        }
        Options = now with
        {
            Ttl = next.Ttl, Upstreams = next.Upstreams, ForwardTimeout = next.ForwardTimeout,
            MaxInFlight = next.MaxInFlight, CacheMaxEntries = next.CacheMaxEntries,
        };
        return changes;

        static string List(IEnumerable<IPEndPoint> eps) => "[" + string.Join(", ", eps.Select(e => e.ToString())) + "]";
    }

    /// <summary>The local names now.</summary>
    public NameTable Names => Volatile.Read(ref _updater).Current;

    /// <summary>Threads serving every sandbox's DNS sockets (<see cref="ResolverOptions.ServeThreads"/>); independent of the sandbox count.</summary>
    public int ServingThreads => _pool.Threads;

    /// <summary>Sockets the serving threads watch now: two per sandbox or host listener.</summary>
    internal ServingPool Pool => _pool;

    /// <summary>Forwarded answers held in the cache.</summary>
    public int CachedAnswers => _cache.Count;

    /// <summary>
    /// The name-table loop, for a supervisor: if the loop has ended (it failed), builds a new table from a fresh catalog
    /// snapshot and follows the feed from there; then calls <paramref name="started"/> and waits. Returns when
    /// <paramref name="ct"/> is cancelled; throws when the loop fails, so the supervisor counts it and calls again.
    /// </summary>
    public async Task RunNameTableAsync(Action started, CancellationToken ct)
    {
        var updater = Volatile.Read(ref _updater);
        if (updater.Completion.IsCompleted)
        {
            if (_newWatch is null) throw new InvalidOperationException("the name table was built from one catalog watch and cannot restart");
            var fresh = new NameTableUpdater(_newWatch(), Options.ClusterDomain, _log, Metrics, Options.FaultPoint);
            Volatile.Write(ref _updater, fresh);
            updater.Dispose();
            updater = fresh;
        }
        started();
        await updater.Completion.WaitAsync(ct).ConfigureAwait(false);
        throw new InvalidOperationException("the name-table loop ended: its catalog watch was closed");
    }

    /// <summary>Completes once the names reflect catalog version <paramref name="version"/>.</summary>
    public Task WaitForCatalogVersionAsync(long version, CancellationToken cancel = default) => Volatile.Read(ref _updater).WaitForVersionAsync(version, cancel);

    /// <summary>
    /// Gives a sandbox the resolver at 127.0.0.11: listeners inside <paramref name="sandbox"/>, the nft redirect, and for a
    /// named namespace (<paramref name="netnsName"/>) /etc/netns/NAME/resolv.conf. It sees the names of
    /// <paramref name="networks"/>. Calling it again for the same key is safe (after a restart it replaces the old redirect).
    /// </summary>
    /// <exception cref="SandboxDnsException">A step failed; nothing of this attach is left behind.</exception>
    public SandboxAttachment Attach(NetNs sandbox, string sandboxKey, string? netnsName, IReadOnlyCollection<string> networks)
        => _sandboxes.Attach(sandbox, sandboxKey, netnsName, networks);

    /// <summary>Changes the networks whose names a sandbox sees; false if it is not attached.</summary>
    public bool UpdateNetworks(string sandboxKey, IReadOnlyCollection<string> networks) => _sandboxes.UpdateNetworks(sandboxKey, networks);

    /// <summary>Removes the sandbox's listeners, nft table and resolv.conf; false if it was not attached.</summary>
    public bool Detach(string sandboxKey) => _sandboxes.Detach(sandboxKey);

    public IReadOnlyCollection<string> AttachedSandboxes => _sandboxes.Keys;

    /// <summary>The listener of an attached sandbox, for diagnostics and tests.</summary>
    public SandboxListener? SandboxListener(string sandboxKey) => _sandboxes.Listener(sandboxKey);

    /// <summary>
    /// Serves DNS on <paramref name="endPoint"/> in the current namespace (UDP and TCP on the same port), for names of
    /// <paramref name="networks"/>. For tests, benchmarks and a host-side debugging endpoint.
    /// </summary>
    public SandboxListener Listen(IPEndPoint endPoint, IReadOnlyCollection<string> networks, string? key = null)
    {
        // With port 0 the UDP port is random and TCP may already use the same number elsewhere: try a few.
        for (int attempt = 1; ; attempt++)
        {
            var udp = new Socket(endPoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            var tcp = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                udp.Bind(endPoint);
                tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                tcp.Bind(new IPEndPoint(endPoint.Address, ((IPEndPoint)udp.LocalEndPoint!).Port));
                tcp.Listen(128);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && endPoint.Port == 0 && attempt < 20)
            {
                udp.Dispose();
                tcp.Dispose();
                continue;
            }
            catch
            {
                udp.Dispose();
                tcp.Dispose();
                throw;
            }
            var listener = NewListener(key ?? $"host:{udp.LocalEndPoint}", udp, tcp, networks);
            lock (_hostListeners) _hostListeners.Add(listener);
            return listener;
        }
    }

    private SandboxListener NewListener(string key, Socket udp, Socket tcp, IEnumerable<string> networks)
        => new(key, udp, tcp, new SandboxView(networks), _pool, _engine, Options, _log);

    private ulong NextSeed()
    {
        lock (_seeds) return (ulong)_seeds.NextInt64() | 1;
    }

    public void Dispose()
    {
        _sandboxes.Dispose();
        lock (_hostListeners)
        {
            foreach (var l in _hostListeners) l.Dispose();
            _hostListeners.Clear();
        }
        _pool.Dispose();
        _forwarder.Dispose();
        _updater.Dispose();
        if (_ownsMetrics) Metrics.Dispose();
    }
}
