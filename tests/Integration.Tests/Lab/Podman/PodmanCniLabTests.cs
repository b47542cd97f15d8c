using Discovery.Tests.Agent;
using Discovery.Testing;
using Xunit;
using Xunit.Abstractions;

namespace Discovery.Tests.Lab.Podman;

/// <summary>
/// Issue 9's acceptance with real podman 4.3 + runc on the 3-host lab: containers started by podman on each host join
/// a discovery network through the `discovery` CNI plugin, find each other by name and alias at 127.0.0.11, talk
/// across VXLAN, publish ports on their host's address, vanish everywhere within 1 s of `podman rm -f`, and survive a
/// restart of their host's agent.
/// </summary>
[Collection("agent")]
public sealed class PodmanCniLabTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    /// <summary>A discovery network NET on the lab, installed for podman with `discovery cni install NET`.</summary>
    private static string CniNetwork(PodmanLab pod, string name, string subnet)
    {
        var net = pod.Name(name);
        pod.Lab.CliJson(1, "network", "create", net, "--subnet", subnet);
        for (var h = 1; h <= pod.Lab.Hosts; h++)
        {
            var host = h;
            Assert.True(Eventually.TrueBlocking(() => pod.Lab.Cli(host, "network", "inspect", net).Exit == 0, Wait), $"network {net} reaching h{host}");
        }
        pod.Track(net);
        // No --api-socket: a conflist naming one host's socket would send all three podman "hosts" to that agent. The
        // plugin takes the socket from DISCOVERY_API_SOCKET, which PodmanLab sets per host.
        var (exit, _, err) = Sh.Try(Binary.Path, "cni", "install", net);
        Assert.True(exit == 0, $"discovery cni install {net}: {err}");
        Assert.True(File.Exists(PodmanLab.ConflistPath(net)), $"cni install wrote no {PodmanLab.ConflistPath(net)}");
        return net;
    }

    private static bool NameIn(PodmanLab pod, int host, string name) =>
        pod.Lab.CliJson(host, "endpoints", "--json").EnumerateArray().Any(e => e.GetProperty("name").GetString() == name);

    [Fact]
    public async Task Containers_on_three_hosts_resolve_names_and_aliases_reach_each_other_publish_ports_and_rm_f_removes_the_name_everywhere_within_1_s()
    {
        using var pod = new PodmanLab(3);
        var net = CniNetwork(pod, "net", "198.19.91.0/24");
        var web = new string[4];
        for (var h = 1; h <= 3; h++) web[h] = pod.Web(h, $"web{h}", "--network", net, "--network-alias", "api");
        var ip = web.Skip(1).Select(w => pod.Address(w, net)).Prepend("").ToArray();
        foreach (var a in ip.Skip(1)) Assert.StartsWith("198.19.91.", a);
        Assert.Equal(3, ip.Skip(1).Distinct().Count());

        // The plugin's result put our resolver first in the container's resolv.conf.
        var resolv = pod.Exec(web[1], "cat", "/etc/resolv.conf").Out;
        Assert.StartsWith("nameserver 127.0.0.11", resolv.Split('\n').First(l => l.StartsWith("nameserver", StringComparison.Ordinal)));

        // From web1 on h1: nslookup web2 (h2's container, by its podman name) and the alias api shared by all three.
        await Eventually.Until(() => pod.Exec(web[1], "nslookup", web[2]).Out.Contains(ip[2], StringComparison.Ordinal), Wait, $"nslookup {web[2]} in {web[1]} gives {ip[2]}");
        var api = "";
        await Eventually.Until(() => (api = pod.Exec(web[1], "nslookup", "api").Out).Contains("Address", StringComparison.Ordinal)
            && ip.Skip(1).Any(a => api.Contains(a, StringComparison.Ordinal)), Wait, "nslookup api in web1 gives a web container");
        output.WriteLine($"nslookup api in {web[1]}:\n{api}");
        // Every address the alias gives is one of the three containers'.
        foreach (var line in api.Split('\n').SkipWhile(l => !l.StartsWith("Name:", StringComparison.Ordinal)).Where(l => l.StartsWith("Address", StringComparison.Ordinal)))
            Assert.Contains(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1], ip);

        // wget from web1 (h1) to web3 (h3) by name: DNS, then HTTP across VXLAN; web3's page names it.
        await Eventually.Until(() => pod.Wget(web[1], web[3]) == web[3], Wait, $"wget http://{web[3]}/ from {web[1]}");

        // podman run -p 8080:80 on h2: reachable on h2's address from an outside client on the underlay.
        var pub = pod.Web(2, "pub", "--network", net, "-p", "8080:80");
        var outside = LabWorkloads.OutsideClient(pod.Lab);
        string Curl(string url) => Sh.Try("ip", "netns", "exec", outside, "curl", "-s", "-m", "2", url).Out.Trim();
        await Eventually.Until(() => Curl($"http://{LabCluster.HostIp(2)}:8080/") == pub, Wait, "h2:8080 -> pub");

        // podman rm -f web2 on h2: the name leaves DNS on h1 and h3 and the catalog on every host.
        // Timed in process: a DNS socket in web1's (h1) and web3's (h3) sandbox, polled every 10 ms from the moment
        // `podman rm -f` starts; the catalogs of all three hosts are checked once DNS says gone.
        using var dns1 = new SandboxDns(pod.Sandbox(web[1]));
        using var dns3 = new SandboxDns(pod.Sandbox(web[3]));
        await Eventually.Until(() => dns1.Answers(web[2]) > 0 && dns3.Answers(web[2]) > 0, Wait, $"{web[2]} resolving on h1 and h3 before rm");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        TimeSpan? gone1 = null, gone3 = null;
        var watch = Task.Run(() =>
        {
            while (clock.Elapsed < TimeSpan.FromSeconds(15) && (gone1 is null || gone3 is null))
            {
                if (gone1 is null && dns1.Answers(web[2]) == 0) gone1 = clock.Elapsed;
                if (gone3 is null && dns3.Answers(web[2]) == 0) gone3 = clock.Elapsed;
                Thread.Sleep(Eventually.Poll);
            }
        });
        pod.Remove(web[2]);
        var rmTook = clock.Elapsed;
        await watch;
        Assert.True(gone1 is not null && gone3 is not null, $"{web[2]} still resolving 15 s after podman rm -f started (h1 gone: {gone1}, h3 gone: {gone3})");
        var last = gone1 > gone3 ? gone1.Value : gone3!.Value;
        var afterReturn = last - rmTook;
        var report = $"rm -f propagation: `podman rm -f -t 0 {web[2]}` on h2 took {rmTook.TotalMilliseconds:F0} ms; name gone from DNS on h1 at +{gone1!.Value.TotalMilliseconds:F0} ms, on h3 at +{gone3!.Value.TotalMilliseconds:F0} ms after rm started ({afterReturn.TotalMilliseconds:F0} ms relative to rm returning)";
        output.WriteLine(report);
        Console.WriteLine("[podman] " + report);
        Assert.True(afterReturn <= TimeSpan.FromSeconds(1), $"{web[2]} still resolved {afterReturn.TotalMilliseconds:F0} ms after podman rm -f returned; the limit is 1 s");
        foreach (var h in new[] { 1, 2, 3 }) Assert.False(NameIn(pod, h, web[2]), $"{web[2]} still in h{h}'s catalog after DNS dropped it");
        // The alias still answers with the two that are left.
        await Eventually.Until(() => pod.Wget(web[1], web[3]) == web[3], Wait, "web3 still reachable after web2 left");
    }

    [Fact]
    public async Task Restarting_an_agent_with_containers_running_loses_nothing()
    {
        using var pod = new PodmanLab(2);
        var net = CniNetwork(pod, "net", "198.19.92.0/24");
        var w1 = pod.Web(1, "w1", "--network", net, "--network-alias", "front");
        var w2 = pod.Web(2, "w2", "--network", net);
        var c1 = pod.RunDetached(1, "c1", ["--network", net, "-p", "8081:80"], "sh", "-c", $"echo {pod.Name("c1")} > /var/www/index.html && exec httpd -f -p 80 -h /var/www");
        string Get(string from, string to) => pod.Wget(from, to);
        string[] Endpoints(int host) => [.. pod.Lab.CliJson(host, "endpoints", "--json").EnumerateArray()
            .Select(e => $"{e.GetProperty("name").GetString()}={e.GetProperty("ip").GetString()}").Order()];
        await Eventually.Until(() => Get(w1, w2) == w2 && Get(w2, w1) == w1 && Get(w2, "front") == w1, Wait, "w1 <-> w2 by name, front by alias");
        var outside = LabWorkloads.OutsideClient(pod.Lab);
        string Curl(string url) => Sh.Try("ip", "netns", "exec", outside, "curl", "-s", "-m", "2", url).Out.Trim();
        await Eventually.Until(() => Curl($"http://{LabCluster.HostIp(1)}:8081/") == c1, Wait, "h1:8081 -> c1");
        bool HasAll(string[] eps) => new[] { w1, w2, c1 }.All(n => eps.Any(e => e.StartsWith(n + "=", StringComparison.Ordinal)));
        await Eventually.Until(() => HasAll(Endpoints(1)) && Endpoints(2).SequenceEqual(Endpoints(1)), Wait, "both hosts list the same endpoints, w1, w2 and c1 among them");
        var before = Endpoints(1);

        // SIGTERM h1's agent (it saves its state and does not leave), start it again; the containers keep running.
        pod.Lab.Stop(1);
        pod.Lab.Start(1);
        await Eventually.Until(() => Endpoints(1).SequenceEqual(before) && Endpoints(2).SequenceEqual(before), Wait, "the same endpoints on both hosts after h1's agent restarted");
        await Eventually.Until(() => Get(w1, w2) == w2 && Get(w2, w1) == w1 && Get(w2, "front") == w1, Wait, "names, alias and traffic after the restart");
        await Eventually.Until(() => Curl($"http://{LabCluster.HostIp(1)}:8081/") == c1, Wait, "h1:8081 -> c1 after the restart");

        // The restarted agent still owns what it had: podman rm -f on h1 (the plugin's DEL) removes w1 everywhere.
        pod.Remove(w1);
        await Eventually.Until(() => !Endpoints(2).Any(e => e.StartsWith(w1 + "=", StringComparison.Ordinal)) && !Endpoints(1).Any(e => e.StartsWith(w1 + "=", StringComparison.Ordinal)), Wait, $"{w1} gone from both hosts after rm -f");
    }
}
