using System.Text.Json;
using Discovery.Api;
using Discovery.Cni;
using Xunit;

namespace Discovery.Tests.Cni;

public class CniResultTests
{
    private static readonly EndpointView Endpoint = new("id1", "id1short", "c1", "web", "198.19.0.5", "02:c6:13:00:00:05", "eth0",
        "/run/netns/x", "n1", ["api"], null);
    private static readonly NetworkView Network = new("web", "198.19.0.0/24", "198.19.0.1", 4097, 1450, 26, 1, 64);

    [Fact]
    public void Result_has_the_sandbox_interface_with_its_mac_the_cidr_address_gateway_route_and_dns()
    {
        var r = CniResultBuilder.Build("1.0.0", "/run/netns/x", Endpoint, Network);
        var json = JsonSerializer.Serialize(r, CniJsonContext.Default.CniResult);
        Assert.Equal(
            """{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"02:c6:13:00:00:05","sandbox":"/run/netns/x"}],"ips":[{"address":"198.19.0.5/24","gateway":"198.19.0.1","interface":0}],"routes":[{"dst":"0.0.0.0/0","gw":"198.19.0.1"}],"dns":{"nameservers":["127.0.0.11"]}}""",
            json);
    }

    [Fact]
    public void An_endpoint_without_mac_is_an_error_not_a_result_podman_would_reject()
    {
        var ex = Assert.Throws<CniException>(() => CniResultBuilder.Build("1.0.0", "/run/netns/x", Endpoint with { Mac = "" }, Network));
        Assert.Equal(CniCode.AgentFailed, ex.Code);
    }

    [Fact]
    public void Error_json_has_the_spec_fields()
    {
        var json = JsonSerializer.Serialize(new CniErrorResult("1.0.0", 11, "agent down", null), CniJsonContext.Default.CniErrorResult);
        Assert.Equal("""{"cniVersion":"1.0.0","code":11,"msg":"agent down"}""", json);
    }

    [Theory]
    [InlineData(400, CniCode.AgentRejected)]
    [InlineData(404, CniCode.AgentNotFound)]
    [InlineData(409, CniCode.AgentConflict)]
    [InlineData(500, CniCode.AgentFailed)]
    public void Agent_refusals_map_to_codes_above_100_with_the_agents_line(int status, int code)
    {
        var e = CniPlugin.Classify(new ApiException("network web not found", status))!;
        Assert.Equal(code, e.Code);
        Assert.Equal("agent: network web not found", e.Message);
    }

    [Fact]
    public void Unreachable_agent_and_broken_connections_are_try_again_later()
    {
        Assert.Equal(CniCode.TryAgainLater, CniPlugin.Classify(new AgentUnreachableException("down"))!.Code);
        Assert.Equal(CniCode.TryAgainLater, CniPlugin.Classify(new IOException("reset"))!.Code);
    }
}
