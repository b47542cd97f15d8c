using System.Text;
using Discovery.Cni;
using Xunit;
using static Discovery.Tests.Cni.CniTestData;

namespace Discovery.Tests.Cni;

public class AddPlanTests
{
    private static AddPlan Plan(Dictionary<string, string> env, string stdin) =>
        AddPlan.For(CniEnvironment.Parse(Lookup(env)), NetworkConfig.Parse(Encoding.UTF8.GetBytes(stdin)));

    [Fact]
    public void Attach_carries_name_aliases_short_id_netns_and_ifname()
    {
        var p = Plan(Env(), AddStdin);
        Assert.Equal(Netns, p.Attach.Netns);
        Assert.Equal("web", p.Attach.Network);
        Assert.Equal("c1", p.Attach.Name);
        Assert.Equal(["api", "249fe6172947"], p.Attach.Aliases);
        Assert.Equal("eth0", p.Attach.Ifname);
        Assert.Null(p.Attach.Ip);
    }

    [Fact]
    public void Port_mappings_become_the_containers_own_service_published_in_host_mode()
    {
        var p = Plan(Env(), AddStdin);
        var s = Assert.IsType<Discovery.Api.ServiceRequest>(p.Service);
        Assert.Equal("ctr-249fe6172947", s.Name);
        Assert.Equal(s.Name, p.Attach.Service);
        Assert.Equal(["web"], s.Networks);
        Assert.Equal("dnsrr", s.Mode);
        Assert.Equal("host", s.PublishMode);
        Assert.Equal([new Discovery.Api.ServicePortRequest(null, "tcp", 80, 18080, "127.0.0.1"), new Discovery.Api.ServicePortRequest(null, "udp", 53, 5353, null)], s.Ports);
    }

    [Fact]
    public void Ingress_mode_of_the_conflist_reaches_the_service()
    {
        var p = Plan(Env(), """{"cniVersion":"1.0.0","name":"web","publishMode":"ingress","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80}]}}""");
        Assert.Equal("ingress", p.Service!.PublishMode);
    }

    [Fact]
    public void No_port_mapping_means_no_service()
    {
        var p = Plan(Env(), """{"cniVersion":"1.0.0","name":"web"}""");
        Assert.Null(p.Service);
        Assert.Null(p.Attach.Service);
    }

    [Fact]
    public void Static_ip_comes_from_cni_args_or_a_single_ips_entry()
    {
        Assert.Equal("198.19.0.9", Plan(Env(args: "IgnoreUnknown=1;K8S_POD_NAME=c1;IP=198.19.0.9"), """{"cniVersion":"1.0.0","name":"web"}""").Attach.Ip);
        Assert.Equal("198.19.0.7", Plan(Env(), """{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"ips":["198.19.0.7/24"]}}""").Attach.Ip);
    }

    [Fact]
    public void Two_static_ips_are_refused_with_code_7()
    {
        var ex = Assert.Throws<CniException>(() => Plan(Env(), """{"cniVersion":"1.0.0","name":"web","runtimeConfig":{"ips":["198.19.0.7","198.19.0.8"]}}"""));
        Assert.Equal(CniCode.InvalidNetworkConfig, ex.Code);
    }

    [Fact]
    public void Without_a_pod_name_the_short_id_names_the_container_and_the_name_is_not_repeated_as_alias()
    {
        var p = Plan(Env(args: ""), AddStdin);
        Assert.Equal("249fe6172947", p.Attach.Name);
        Assert.Equal(["api"], p.Attach.Aliases);
    }

    [Fact]
    public void Service_name_is_a_dns_label_whatever_the_container_id()
    {
        var env = Env();
        env["CNI_CONTAINERID"] = "My_Container.1";
        Assert.Equal("ctr-my-container", AddPlan.ServiceName(CniEnvironment.Parse(Lookup(env))));
    }

    private const string ServiceConflist = """{"cniVersion":"1.0.0","name":"web-svc","type":"discovery","network":"demo","service":"web","runtimeConfig":{"aliases":{"web-svc":["api","249fe6172947"]}}}""";

    [Fact]
    public void Service_conflist_attaches_to_its_network_as_a_task_of_its_service_with_the_aliases_of_the_conflist()
    {
        var p = Plan(Env(), ServiceConflist);
        Assert.Equal("demo", p.Attach.Network);
        Assert.Equal("web", p.Attach.Service);
        Assert.Equal("c1", p.Attach.Name);
        Assert.Equal(["api", "249fe6172947"], p.Attach.Aliases);
        Assert.Null(p.Service); // the named service is the user's: ADD neither creates nor changes it
    }

    [Fact]
    public void Network_option_without_service_attaches_there_and_the_containers_own_service_is_on_that_network()
    {
        var p = Plan(Env(), """{"cniVersion":"1.0.0","name":"web-alt","network":"demo","runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80}]}}""");
        Assert.Equal("demo", p.Attach.Network);
        Assert.Equal(["demo"], p.Service!.Networks);
        Assert.Equal(p.Service.Name, p.Attach.Service);
    }

    [Fact]
    public void Port_mappings_on_a_service_conflist_are_refused_with_code_7_pointing_at_the_service()
    {
        var stdin = ServiceConflist.Replace("\"runtimeConfig\":{", "\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":8081,\"containerPort\":80,\"protocol\":\"tcp\"}],");
        var ex = Assert.Throws<CniException>(() => Plan(Env(), stdin));
        Assert.Equal(CniCode.InvalidNetworkConfig, ex.Code);
        Assert.Contains("discovery service create web --network demo --publish 8081:80", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }
}
