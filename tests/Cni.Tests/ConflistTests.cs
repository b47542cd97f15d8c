using System.Text.Json;
using Discovery.Cni;
using Xunit;

namespace Discovery.Tests.Cni;

public class ConflistTests
{
    [Fact]
    public void Conflist_declares_the_capabilities_podman_needs()
    {
        using var doc = JsonDocument.Parse(Conflist.Render("web", "host", null));
        var root = doc.RootElement;
        Assert.Equal("1.0.0", root.GetProperty("cniVersion").GetString());
        Assert.Equal("web", root.GetProperty("name").GetString());
        var plugin = Assert.Single(root.GetProperty("plugins").EnumerateArray());
        Assert.Equal("discovery", plugin.GetProperty("type").GetString());
        Assert.Equal("host", plugin.GetProperty("publishMode").GetString());
        Assert.False(plugin.TryGetProperty("agentSocket", out _));
        foreach (var cap in new[] { "aliases", "portMappings", "ips" }) Assert.True(plugin.GetProperty("capabilities").GetProperty(cap).GetBoolean());
    }

    [Fact]
    public void Rendered_conflist_plugin_entry_parses_as_the_plugin_reads_it()
    {
        using var doc = JsonDocument.Parse(Conflist.Render("web", "ingress", "/tmp/a.sock"));
        // libcni hands the plugin its entry with cniVersion and name added.
        var entry = doc.RootElement.GetProperty("plugins")[0].GetRawText().TrimEnd('}').TrimEnd() + ",\"cniVersion\":\"1.0.0\",\"name\":\"web\"}";
        var c = NetworkConfig.Parse(System.Text.Encoding.UTF8.GetBytes(entry));
        Assert.Equal("ingress", c.PublishMode);
        Assert.Equal("/tmp/a.sock", c.AgentSocket);
    }

    [Fact]
    public void Service_conflist_carries_network_and_service_and_no_publish_mode_and_parses_as_the_plugin_reads_it()
    {
        var text = Conflist.Render("web-svc", "host", null, "demo", "web");
        using var doc = JsonDocument.Parse(text);
        Assert.Equal("web-svc", doc.RootElement.GetProperty("name").GetString());
        var plugin = doc.RootElement.GetProperty("plugins")[0];
        Assert.Equal("demo", plugin.GetProperty("network").GetString());
        Assert.Equal("web", plugin.GetProperty("service").GetString());
        Assert.False(plugin.TryGetProperty("publishMode", out _));
        // -p must reach the plugin to be refused there, not be dropped silently by libcni.
        Assert.True(plugin.GetProperty("capabilities").GetProperty("portMappings").GetBoolean());
        var entry = plugin.GetRawText().TrimEnd('}').TrimEnd() + ",\"cniVersion\":\"1.0.0\",\"name\":\"web-svc\"}";
        var c = NetworkConfig.Parse(System.Text.Encoding.UTF8.GetBytes(entry));
        Assert.Equal(("web-svc", "demo", "web"), (c.Name, c.Network, c.Service));
    }

    [Fact]
    public void Plain_conflist_has_no_network_or_service_keys()
    {
        using var doc = JsonDocument.Parse(Conflist.Render("web", "host", null));
        var plugin = doc.RootElement.GetProperty("plugins")[0];
        Assert.False(plugin.TryGetProperty("network", out _));
        Assert.False(plugin.TryGetProperty("service", out _));
    }

    [Theory]
    [InlineData("Demo", "web")]
    [InlineData("demo", "web_1")]
    [InlineData("demo", "")]
    [InlineData("", "web")]
    public void Bad_service_or_network_names_of_a_service_conflist_are_refused_in_one_line(string network, string service)
    {
        var ex = Assert.Throws<ArgumentException>(() => Conflist.Render("web-svc", "host", null, network, service));
        Assert.DoesNotContain('\n', ex.Message);
        Assert.Contains("must be 1-63 lower-case letters", ex.Message);
    }

    [Fact]
    public void Publish_mode_on_a_service_conflist_is_refused_the_service_publishes() =>
        Assert.Contains("service web publishes", Assert.Throws<ArgumentException>(() => Conflist.Render("web-svc", "ingress", null, "demo", "web")).Message);

    [Theory]
    [InlineData("../x")]
    [InlineData("Web")]
    [InlineData("")]
    [InlineData("-web")]
    public void Bad_network_names_are_refused(string name) => Assert.Throws<ArgumentException>(() => Conflist.Render(name, "host", null));

    [Fact]
    public void Install_writes_the_conflist_links_the_binary_and_uninstall_removes_only_ours()
    {
        var dir = Path.Combine(Path.GetTempPath(), "cni-test-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            Directory.CreateDirectory(dir);
            var conf = Path.Combine(dir, "net.d");
            var bin = Path.Combine(dir, "bin");
            var binary = Path.Combine(dir, "discovery-binary");
            File.WriteAllText(binary, "x");
            var path = CniInstaller.Install("web", "host", null, conf, bin, binary);
            Assert.True(Conflist.IsOurs(File.ReadAllText(path)));
            Assert.Equal(binary, new FileInfo(Path.Combine(bin, "discovery")).LinkTarget);
            Assert.Equal(["web.conflist"], Directory.GetFiles(conf).Select(Path.GetFileName));
            // Install again: replaced in place, no leftovers.
            CniInstaller.Install("web", "ingress", null, conf, bin, binary);
            Assert.Equal(["web.conflist"], Directory.GetFiles(conf).Select(Path.GetFileName));
            Assert.Contains("ingress", File.ReadAllText(path));

            File.WriteAllText(Path.Combine(conf, "other.conflist"), """{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge"}]}""");
            Assert.Throws<InvalidOperationException>(() => CniInstaller.Uninstall("other", conf));
            Assert.True(CniInstaller.Uninstall("web", conf));
            Assert.False(CniInstaller.Uninstall("web", conf));
            Assert.True(File.Exists(Path.Combine(conf, "other.conflist")));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
