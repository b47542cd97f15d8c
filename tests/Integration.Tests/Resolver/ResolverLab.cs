using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Discovery.Model;
using Discovery.Platform;
using Discovery.Resolver;
using Discovery.Tests.Support;
using Discovery.Testing;

namespace Discovery.Tests.Resolver;

/// <summary>
/// A resolver with a real upstream: knotd serving its own zone in its own namespace, reached from the host over a
/// veth pair in 198.18.0.0/15, and sandboxes (named namespaces) that the tests attach and query with dig and getent.
/// Everything carries the scope's run-id prefix and is removed in Dispose.
/// </summary>
public sealed class ResolverLab : IDisposable
{
    public const string Zone = "example.test";
    public readonly KernelScope Kernel = new();
    public readonly Catalog Catalog = new("node-1");
    public readonly NetNs UpstreamNs;
    public readonly IPAddress UpstreamAddress;
    public DnsService Dns { get; private set; }
    private readonly string _dir;
    private Process? _knot;

    public ResolverLab(ResolverOptions? options = null)
    {
        _dir = Directory.CreateTempSubdirectory("discovery-dns-").FullName;
        // A /30 picked from the run id, so parallel runs do not share addresses.
        int subnet = (Math.Abs(Kernel.Prefix.GetHashCode()) % 60) * 4;
        var host = IPAddress.Parse($"198.18.200.{subnet + 1}");
        UpstreamAddress = IPAddress.Parse($"198.18.200.{subnet + 2}");
        UpstreamNs = Kernel.CreateNetNs("up");
        var hostSide = Kernel.Link("uh");
        Kernel.Netlink().CreateVeth(hostSide, "eth0", UpstreamNs);
        Kernel.Netlink().AddAddress(hostSide, host, 30);
        Kernel.Netlink().SetLink(hostSide, up: true);
        Kernel.Netlink(UpstreamNs).AddAddress("eth0", UpstreamAddress, 30);
        Kernel.Netlink(UpstreamNs).SetLink("eth0", up: true);
        Kernel.Netlink(UpstreamNs).SetLink("lo", up: true);
        StartKnot();
        Dns = NewService(options);
    }

    public DnsService NewService(ResolverOptions? options = null)
    {
        options = (options ?? new ResolverOptions()) with
        {
            Upstreams = [new IPEndPoint(UpstreamAddress, 53)],
            HostResolvConf = Path.Combine(_dir, "host-resolv.conf"),
        };
        File.WriteAllText(options.HostResolvConf, $"nameserver {UpstreamAddress}\nsearch {Zone}\n");
        return new DnsService(Catalog, options);
    }

    public void ReplaceService(DnsService next)
    {
        Dns.Dispose();
        Dns = next;
    }

    private void StartKnot()
    {
        var zone = new List<string>
        {
            $"$ORIGIN {Zone}.",
            "$TTL 300",
            $"@ SOA ns.{Zone}. hostmaster.{Zone}. 1 3600 600 86400 60",
            $"@ NS ns.{Zone}.",
            $"ns A {UpstreamAddress}",
            "www A 198.18.77.1",
            "www2 A 198.18.77.2",
            "www3 A 198.18.77.3",
        };
        // 100 addresses: 1.6 kB of answer, more than 512 bytes, so UDP without EDNS gets TC.
        for (int i = 1; i <= 100; i++) zone.Add($"big A 198.18.78.{i}");
        var conf = Support.KnotConfig.Write(_dir, Zone, $"{UpstreamAddress}@53", zone, udpMaxPayload: 1232);
        _knot = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", UpstreamNs.Name!, "knotd", "-c", conf])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        bool answers = Eventually.TrueBlocking(() =>
        {
            var (code, stdout, _) = Cli.TryRun("dig", "+short", "+time=1", "+tries=1", $"@{UpstreamAddress}", $"www.{Zone}", "A");
            if (code == 0 && stdout.Trim() == "198.18.77.1") return true;
            if (_knot.HasExited) throw new InvalidOperationException("knotd exited: " + _knot.StandardError.ReadToEnd());
            return false;
        }, TimeSpan.FromSeconds(10));
        if (!answers) throw new TimeoutException("knotd did not answer within 10 s");
    }

    public void KillUpstream()
    {
        if (_knot is { HasExited: false })
        {
            _knot.Kill(entireProcessTree: true);
            _knot.WaitForExit();
        }
    }

    /// <summary>A sandbox: a named namespace with the resolver attached for <paramref name="networks"/>.</summary>
    public NetNs Sandbox(string suffix, params string[] networks)
    {
        var ns = Kernel.CreateNetNs(suffix);
        Dns.Attach(ns, ns.Name!, ns.Name, networks);
        return ns;
    }

    public long Put(EndpointRecord ep)
    {
        Catalog.Put(Tables.Endpoints, ep.Id, RecordCodec.Encode(ep));
        return Catalog.Version;
    }

    public Task Settle() => Dns.WaitForCatalogVersionAsync(Catalog.Version);

    public static string Dig(NetNs ns, params string[] args)
        => Cli.Run("ip", ["netns", "exec", ns.Name!, "dig", "@127.0.0.11", "+time=3", "+tries=1", .. args]);

    public static string[] DigShort(NetNs ns, params string[] args)
        => Dig(ns, ["+short", .. args]).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>glibc's resolver, through the resolv.conf that Attach wrote (ip netns exec bind-mounts it).</summary>
    public static (int Code, string Output) Getent(NetNs ns, string database, string key)
    {
        var (code, stdout, _) = Cli.TryRun("ip", "netns", "exec", ns.Name!, "getent", database, key);
        return (code, stdout.Trim());
    }

    /// <summary>A UDP socket opened inside <paramref name="ns"/>, connected to 127.0.0.11:53 through the DNAT.</summary>
    public static Socket SandboxSocket(NetNs ns) => ns.Run(() =>
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 2000 };
        s.Connect(new IPEndPoint(IPAddress.Parse("127.0.0.11"), 53));
        return s;
    });

    public void Dispose()
    {
        var errors = new List<Exception>();
        void Try(Action a)
        {
            try { a(); }
            catch (Exception e) { errors.Add(e); }
        }
        Try(() => Dns.Dispose());
        Try(KillUpstream);
        Try(Kernel.Dispose);
        Try(() => Directory.Delete(_dir, recursive: true));
        if (Directory.Exists("/etc/netns"))
            foreach (var dir in Directory.GetDirectories("/etc/netns", Kernel.Prefix + "*"))
                Try(() => Directory.Delete(dir, recursive: true));
        if (errors.Count > 0) throw new AggregateException("ResolverLab cleanup failed", errors);
    }
}
