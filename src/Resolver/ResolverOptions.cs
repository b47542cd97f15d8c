using System.Net;

namespace Discovery.Resolver;

/// <summary>Settings of the embedded resolver. Defaults follow DESIGN.md (Docker's semantics, with its fixes).</summary>
public sealed record ResolverOptions
{
    /// <summary>Names under this domain that do not exist get NXDOMAIN and are never forwarded.</summary>
    public string ClusterDomain { get; init; } = "discovery.internal.";

    /// <summary>TTL of local answers (Docker uses 600 s, which outlives container moves).</summary>
    public TimeSpan Ttl { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Upstream servers; null reads the host's resolv.conf (see <see cref="HostResolvConf"/>).</summary>
    public IReadOnlyList<IPEndPoint>? Upstreams { get; init; }

    /// <summary>Total time a forwarded query may take before the client gets SERVFAIL.</summary>
    public TimeSpan ForwardTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Forwarded queries in flight at once; past it clients get REFUSED at once.</summary>
    public int MaxInFlight { get; init; } = 1024;

    /// <summary>How long a failing upstream is skipped.</summary>
    public TimeSpan UpstreamHoldDown { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Source ports per upstream that forwarded UDP queries are spread over at random.</summary>
    public int UpstreamPorts { get; init; } = 4;

    /// <summary>Queries one source port carries before it is replaced by a fresh random one.</summary>
    public int UpstreamPortQueries { get; init; } = 256;

    /// <summary>Age after which a source port is replaced by a fresh random one, however few queries it carried.</summary>
    public TimeSpan UpstreamPortLifetime { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Consecutive failures (timeout, refused, unreachable) before an upstream is held down.</summary>
    public int UpstreamFailuresBeforeHoldDown { get; init; } = 2;

    /// <summary>Most cached answers; the oldest go first past it.</summary>
    public int CacheMaxEntries { get; init; } = 10_000;

    /// <summary>Most bytes of cached answers.</summary>
    public long CacheMaxBytes { get; init; } = 16L << 20;

    /// <summary>Cap on a positive answer's TTL in the cache.</summary>
    public TimeSpan CacheMaxTtl { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Cap on a negative answer's TTL (RFC 2308 §5 suggests at most a few hours; we keep it short).</summary>
    public TimeSpan CacheMaxNegativeTtl { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>A TCP client that sends nothing for this long is disconnected.</summary>
    public TimeSpan TcpIdleTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Most concurrent TCP connections per sandbox listener.</summary>
    public int MaxTcpConnections { get; init; } = 64;

    /// <summary>Threads that serve the DNS sockets of every sandbox (one epoll set); 0 or less means one per core.
    /// The count does not grow with the number of sandboxes.</summary>
    public int ServeThreads { get; init; } = Environment.ProcessorCount;

    /// <summary>Largest UDP answer we send, whatever size a client offers.</summary>
    public int MaxUdpPayload { get; init; } = 4096;

    /// <summary>The UDP size we advertise in OPT (DNS flag day 2020).</summary>
    public ushort AdvertisedUdpPayload { get; init; } = 1232;

    /// <summary>The host's resolver configuration: upstreams and search domains.</summary>
    public string HostResolvConf { get; init; } = "/etc/resolv.conf";

    /// <summary>Where systemd-resolved lists its own upstreams, used instead of its 127.0.0.53 stub.</summary>
    public string StubUpstreamResolvConf { get; init; } = "/run/systemd/resolve/resolv.conf";

    /// <summary>Per named namespace resolv.conf files, as `ip netns exec` bind-mounts them.</summary>
    public string NetnsEtcDir { get; init; } = "/etc/netns";

    internal uint TtlSeconds => (uint)Math.Max(0, Ttl.TotalSeconds);

    /// <summary>Test hook called by the resolver's background loops on every round (points "name-table",
    /// "upstream-answer" and "port-rotation"), so a test can make a round fail; null in normal runs. Like <c>OverlayOptions.FaultPoint</c>.</summary>
    public Action<string>? FaultPoint { get; init; }
}
