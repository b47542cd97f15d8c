using System.Diagnostics;
using System.Net;
using Discovery.Api;
using Discovery.Daemon.Api;
using Discovery.Overlay;
using Discovery.Platform;
using Discovery.Resolver.Wire;

namespace Discovery.Bench.Propagation;

/// <summary>Our propagation samples: attach on h1, seen from a sandbox on h3.</summary>
public sealed class OursResult
{
    /// <summary>Attach returned on h1 → h3's embedded DNS answers the name with the endpoint's address.</summary>
    public Distribution Dns { get; } = new();
    /// <summary>
    /// The attach request was sent on h1 → h3 answers: an upper bound, because the agent writes the record to its catalog
    /// (and gossip starts carrying it) before it sets up the sandbox's DNS and answers the call.
    /// </summary>
    public Distribution DnsFromRequest { get; } = new();
    /// <summary>Attach returned → h3's vxlan0 holds the endpoint's neighbor and FDB entries.</summary>
    public Distribution Kernel { get; } = new();
    /// <summary>Attach returned → an echo request from h3's observer sandbox is answered.</summary>
    public Distribution Ping { get; } = new();
    /// <summary>Detach returned on h1 → NXDOMAIN on h3 and no vxlan0 entries left there.</summary>
    public Distribution Detach { get; } = new();
    /// <summary>Samples whose first ping after the vxlan0 entries appeared went unanswered.</summary>
    public int PingRetries { get; set; }
}

/// <summary>
/// Creates a network, attaches an observer sandbox on h3, then attaches (and detaches) a fresh sandbox on h1 per
/// sample and times, from the moment the attach call returns, when h3 can resolve it and when it can ping it.
/// </summary>
public sealed class OursPropagation(Lab lab, BenchSettings settings, CancellationToken ct)
{
    public const string Network = "prop";
    private const string Subnet = "198.19.77.0/24";
    private const string ClusterDomain = "discovery.internal";   // the agent's default --cluster-domain
    private static readonly TimeSpan DnsTimeout = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan PingTimeout = TimeSpan.FromMilliseconds(200);
    private static readonly TimeSpan SetupTimeout = TimeSpan.FromSeconds(20);
    private static readonly IPAddress H1Vtep = IPAddress.Parse(Lab.HostIp(1));

    public async Task<OursResult> RunAsync(TimeSpan budget)
    {
        var phase = Stopwatch.StartNew();
        using var h1 = new ApiClient(lab.ApiSocket(1));
        using var h3 = new ApiClient(lab.ApiSocket(3));
        await WaitForAliveMembers(h3, 3);

        h1.Post<NetworkView>("/v1/networks", new CreateNetworkRequest(Network, Subnet));
        using var observer = NetNs.Create(lab.Prefix + "obs");
        var observerEp = await AttachObserver(h3, observer.Name!);
        using var overlay = NetNs.Open(lab.OverlayNs(3, Network));
        using var netlink = Rtnetlink.Open(overlay);
        using var dns = DnsProbe.Open(observer);
        using var echo = EchoProbe.Open(observer);

        // The observer must resolve itself before anything else is timed, or the DNS path itself is broken.
        var self = IPAddress.Parse(observerEp.Ip);
        await Polling.Until(() => dns.QueryA(Fqdn(observerEp.Name), DnsTimeout).Address?.Equals(self) == true,
            Stopwatch.GetTimestamp(), settings.PollInterval, SetupTimeout, "the observer resolving its own name on h3", ct);

        var result = new OursResult();
        for (var i = 0; i < settings.Warmup + settings.Samples; i++)
        {
            if (phase.Elapsed > budget)
                throw new BenchException($"our propagation ran over its {budget.TotalSeconds:0} s budget after {i} attaches");
            await Sample(i, h1, dns, echo, netlink, i < settings.Warmup ? null : result);
        }
        return result;
    }

    private async Task Sample(int i, ApiClient h1, DnsProbe dns, EchoProbe echo, Rtnetlink h3Overlay, OursResult? result)
    {
        var name = $"p{i:D3}";
        var fqdn = Fqdn(name);
        var sandbox = $"{lab.Prefix}c{i}";
        NetNs.Create(sandbox).Dispose();
        try
        {
            await Task.Delay(settings.NextJitter(), ct);
            var requested = Stopwatch.GetTimestamp();
            var ep = h1.Post<EndpointView>("/v1/attach", new AttachRequest(sandbox, Network, name));
            var attached = Stopwatch.GetTimestamp();
            var ip = IPAddress.Parse(ep.Ip);
            var mac = Convert.FromHexString(ep.Mac.Replace(":", ""));
            var what = $"attach {i} ({name} {ip} on h1):";

            var resolved = Polling.Until(() => Resolves(dns, fqdn, ip, what), attached, settings.PollInterval,
                settings.SampleTimeout, $"{what} resolving from h3", ct);
            var kernelAt = TimeSpan.Zero;
            var retried = false;
            var pingable = Polling.Until(() =>
            {
                if (kernelAt == TimeSpan.Zero)
                {
                    if (!HasPeerEntries(h3Overlay, ip, mac)) return false;
                    kernelAt = Stopwatch.GetElapsedTime(attached);
                }
                if (echo.Ping(ip, PingTimeout)) return true;
                retried = true;
                return false;
            }, attached, settings.PollInterval, settings.SampleTimeout, $"{what} ping from h3", ct);
            await Task.WhenAll(resolved, pingable);
            if (result is not null)
            {
                result.Dns.Add(resolved.Result);
                result.DnsFromRequest.Add(resolved.Result + Stopwatch.GetElapsedTime(requested, attached));
                result.Kernel.Add(kernelAt);
                result.Ping.Add(pingable.Result);
                if (retried) result.PingRetries++;
            }

            // Wait until h3 has forgotten it: the next sample may get the same address (and so the same MAC).
            h1.Post<EndpointView>("/v1/detach", new DetachRequest(sandbox, Network));
            var detached = Stopwatch.GetTimestamp();
            var gone = await Polling.Until(
                () => dns.QueryA(fqdn, DnsTimeout).Rcode == ResponseCode.NxDomain && !HasAnyPeerEntry(h3Overlay, ip, mac),
                detached, settings.PollInterval, settings.SampleTimeout, $"{what} detach reaching h3", ct);
            result?.Detach.Add(gone);
        }
        finally
        {
            NetNs.Delete(sandbox);
        }
    }

    private static bool Resolves(DnsProbe dns, string fqdn, IPAddress ip, string what)
    {
        var answer = dns.QueryA(fqdn, DnsTimeout);
        if (answer.Address is null) return false;
        if (!answer.Address.Equals(ip)) throw new BenchException($"{what} h3 answered {fqdn} with {answer.Address}, not {ip}");
        return true;
    }

    private static bool HasPeerEntries(Rtnetlink overlay, IPAddress ip, byte[] mac) =>
        overlay.GetNeighbors(KernelNames.Vxlan).Any(n => n.Address.Equals(ip) && n.Mac.AsSpan().SequenceEqual(mac))
        && overlay.GetFdb(KernelNames.Vxlan).Any(f => f.Mac.AsSpan().SequenceEqual(mac) && H1Vtep.Equals(f.Destination));

    private static bool HasAnyPeerEntry(Rtnetlink overlay, IPAddress ip, byte[] mac) =>
        overlay.GetNeighbors(KernelNames.Vxlan).Any(n => n.Address.Equals(ip))
        || overlay.GetFdb(KernelNames.Vxlan).Any(f => f.Mac.AsSpan().SequenceEqual(mac));

    private static string Fqdn(string name) => $"{name}.{Network}.{ClusterDomain}.";

    private async Task WaitForAliveMembers(ApiClient api, int count)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            var members = api.Get<List<MemberView>>("/v1/members");
            var alive = members.Count(m => m.Status == "alive");
            if (alive >= count) return;
            if (sw.Elapsed > SetupTimeout)
                throw new BenchException($"h3 sees {alive} alive members after {SetupTimeout.TotalSeconds:0} s, want {count}:\n{lab.Tail(3)}");
            await Task.Delay(100, ct);
        }
    }

    /// <summary>The network was created on h1; h3 accepts the attach once the network record has reached it.</summary>
    private async Task<EndpointView> AttachObserver(ApiClient h3, string sandbox)
    {
        var sw = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return h3.Post<EndpointView>("/v1/attach", new AttachRequest(sandbox, Network, "obs"));
            }
            catch (ApiException ex) when (ex.Message.Contains("not found", StringComparison.Ordinal) && sw.Elapsed < SetupTimeout)
            {
                await Task.Delay(50, ct);
            }
        }
    }
}
