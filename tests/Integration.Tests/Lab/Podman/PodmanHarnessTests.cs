using Discovery.Tests.Agent;
using Discovery.Testing;
using Xunit;

namespace Discovery.Tests.Lab.Podman;

/// <summary>
/// The podman harness itself, with Debian's bridge and portmap plugins and with --network none (no discovery plugin):
/// containers run per lab host under nsenter, get addresses in the test range, serve HTTP, and nothing of the run is left afterwards.
/// </summary>
[Collection("agent")]
public sealed class PodmanHarnessTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Bridge_containers_run_on_their_own_lab_host_serve_http_and_leave_nothing_behind()
    {
        string prefix;
        using (var pod = new PodmanLab(2))
        {
            prefix = pod.Prefix;
            var net = pod.BridgeNetwork("br", "b0", "198.18.80.0/24");
            var web = pod.Web(1, "web", "--network", net);
            var other = pod.Web(2, "other", "--network", net);
            var webIp = pod.Address(web, net);
            var otherIp = pod.Address(other, net);
            Assert.StartsWith("198.18.80.", webIp);
            Assert.StartsWith("198.18.80.", otherIp);
            Assert.NotEqual(webIp, otherIp);

            // The bridge was made in each lab host's namespace, not in the root one.
            foreach (var h in new[] { 1, 2 })
                Assert.Contains(pod.Name("b0"), Sh.Run("ip", "-n", pod.Lab.HostNs(h), "-br", "link", "show", "type", "bridge"));
            Assert.Null(Support.Cli.Link(null, pod.Name("b0")));

            // A second container on h1 reaches web over h1's bridge; web's page names it.
            var client = pod.RunDetached(1, "client", ["--network", net], "sleep", "600");
            await Eventually.Until(() => pod.Wget(client, webIp) == web, Wait, "client -> web over h1's bridge");

            // --network none: the anchor of bench/cni.
            var none = pod.Podman(2, "run", "--rm", "--network", "none", pod.Image, "true");
            Assert.True(none.Exit == 0, none.Err);
        }
        var left = Sh.Run("podman", "ps", "-a", "--format", "{{.Names}}") + Sh.Run("podman", "images", "--format", "{{.Repository}}");
        Assert.DoesNotContain(prefix, left);
        Assert.Empty(Directory.GetFiles(PodmanSetup.ConflistDir, prefix + "*"));
        Assert.DoesNotContain(prefix, Sh.Run("ip", "netns", "list"));
    }
}
