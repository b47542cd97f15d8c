using System.Text;
using Discovery.Cni;
using Xunit;
using static Discovery.Tests.Cni.CniTestData;

namespace Discovery.Tests.Cni;

public class NetworkConfigTests
{
    private static NetworkConfig Parse(string json) => NetworkConfig.Parse(Encoding.UTF8.GetBytes(json));

    private static int Code(string json) => Assert.Throws<CniException>(() => Parse(json)).Code;

    [Fact]
    public void Podman_add_stdin_gives_network_aliases_and_port_mappings()
    {
        var c = Parse(AddStdin);
        Assert.Equal("web", c.Name);
        Assert.Equal(["api", "249fe6172947"], c.Aliases);
        Assert.Equal(NetworkConfig.HostMode, c.PublishMode);
        Assert.Null(c.AgentSocket);
        Assert.Equal([new PortMapping(18080, 80, "tcp", "127.0.0.1"), new PortMapping(5353, 53, "udp", null)], c.PortMappings);
    }

    [Fact]
    public void Del_stdin_prev_result_gives_the_sandbox_and_address_as_hints()
    {
        var c = Parse(DelStdin);
        Assert.Equal("/run/netns/netns-x", c.PrevSandbox);
        Assert.Equal("198.19.0.2/24", c.PrevAddress);
    }

    [Fact]
    public void Plugin_options_agent_socket_and_ingress_mode_are_read()
    {
        var c = Parse("""{"cniVersion":"1.0.0","name":"web","type":"discovery","agentSocket":"/tmp/x/agent.sock","publishMode":"ingress"}""");
        Assert.Equal("/tmp/x/agent.sock", c.AgentSocket);
        Assert.Equal(NetworkConfig.IngressMode, c.PublishMode);
    }

    [Fact]
    public void Without_network_or_service_options_the_conflist_name_is_the_network_and_there_is_no_service()
    {
        var c = Parse(AddStdin);
        Assert.Equal("web", c.Network);
        Assert.Null(c.Service);
    }

    [Fact]
    public void Service_conflist_names_its_network_and_service_and_aliases_are_keyed_by_the_conflist_name()
    {
        var c = Parse("""{"cniVersion":"1.0.0","name":"web-svc","type":"discovery","network":"demo","service":"web","runtimeConfig":{"aliases":{"web-svc":["a","249fe6172947"],"demo":["wrong"]}}}""");
        Assert.Equal("web-svc", c.Name);
        Assert.Equal("demo", c.Network);
        Assert.Equal("web", c.Service);
        Assert.Equal(["a", "249fe6172947"], c.Aliases);
    }

    [Fact]
    public void Ips_drop_their_prefix_length_and_aliases_of_other_networks_are_ignored()
    {
        var c = Parse("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"ips":["198.19.0.20/24","198.19.0.21"],"aliases":{"other":["x"]}}}""");
        Assert.Equal(["198.19.0.20", "198.19.0.21"], c.Ips);
        Assert.Empty(c.Aliases);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("{\"cniVersion\":\"1.0.0\",")]
    [InlineData("{\"cniVersion\":\"1.0.0\",\"name\":\"web\"} trailing")]
    [InlineData("\u0000\u0001\u0002")]
    public void Broken_json_is_code_6_or_7(string json)
    {
        Assert.Contains(Code(json), new[] { CniCode.DecodingFailure, CniCode.InvalidNetworkConfig });
    }

    [Fact]
    public void Nesting_deeper_than_the_bound_is_a_decoding_failure_not_a_crash()
    {
        var deep = new string('[', 10_000) + new string(']', 10_000);
        Assert.Equal(CniCode.DecodingFailure, Code(deep));
    }

    [Fact]
    public void Config_larger_than_the_bound_is_refused()
    {
        var big = "{\"cniVersion\":\"1.0.0\",\"name\":\"web\",\"x\":\"" + new string('a', NetworkConfig.MaxBytes) + "\"}";
        Assert.Equal(CniCode.InvalidNetworkConfig, Code(big));
    }

    [Theory]
    [InlineData("""[1,2]""")]
    [InlineData("""{"name":"web"}""")]
    [InlineData("""{"cniVersion":1,"name":"web"}""")]
    [InlineData("""{"cniVersion":"1.0.0"}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"Web"}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"../etc"}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","publishMode":"local"}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","agentSocket":"relative.sock"}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":[]}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"aliases":{"web":"api"}}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"aliases":{"web":[1]}}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"portMappings":[{"hostPort":0,"containerPort":80}]}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"portMappings":[{"hostPort":70000,"containerPort":80}]}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"portMappings":[{"hostPort":"80","containerPort":80}]}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"portMappings":[{"hostPort":8080}]}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"portMappings":[{"hostPort":7000,"containerPort":7000,"protocol":"sctp"}]}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":80,"hostIP":"::1"}]}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"portMappings":[7]}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"ips":["2001:db8::1"]}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"ips":["198.19.0.999"]}}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","network":"Demo"}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","network":""}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","network":7}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","service":"web.svc"}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","service":"-web"}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":"web","service":["web"]}""")]
    public void Wrong_shape_or_value_is_code_7(string json) => Assert.Equal(CniCode.InvalidNetworkConfig, Code(json));

    [Theory]
    [InlineData("0.4.0")]
    [InlineData("0.3.1")]
    [InlineData("2.0.0")]
    public void Unsupported_version_is_code_1(string version) =>
        Assert.Equal(CniCode.IncompatibleVersion, Code($$"""{"cniVersion":"{{version}}","name":"web"}"""));

    [Fact]
    public void Too_many_aliases_are_refused()
    {
        var aliases = string.Join(",", Enumerable.Range(0, 65).Select(i => $"\"a{i}\""));
        Assert.Equal(CniCode.InvalidNetworkConfig, Code("{\"cniVersion\":\"1.0.0\",\"name\":\"web\",\"runtimeConfig\":{\"aliases\":{\"web\":[" + aliases + "]}}}"));
    }
}
