using Discovery.Cni;
using Xunit;
using static Discovery.Tests.Cni.CniTestData;

namespace Discovery.Tests.Cni;

public class CniEnvironmentTests
{
    [Fact]
    public void Podman_add_environment_parses_with_container_name_and_short_id()
    {
        var env = CniEnvironment.Parse(Lookup(Env()));
        Assert.Equal(CniCommandKind.Add, env.Command);
        Assert.Equal(Netns, env.Netns);
        Assert.Equal("eth0", env.Ifname);
        Assert.Equal("c1", env.Args.PodName);
        Assert.Equal("249fe6172947", env.ShortId);
    }

    [Fact]
    public void Version_ignores_podmans_dummy_values()
    {
        var env = CniEnvironment.Parse(Lookup(new() { ["CNI_COMMAND"] = "VERSION", ["CNI_CONTAINERID"] = "", ["CNI_NETNS"] = "dummy", ["CNI_IFNAME"] = "dummy", ["CNI_ARGS"] = "" }));
        Assert.Equal(CniCommandKind.Version, env.Command);
    }

    [Theory]
    [InlineData("CNI_COMMAND", "ADDX")]
    [InlineData("CNI_COMMAND", "add")]
    [InlineData("CNI_CONTAINERID", "")]
    [InlineData("CNI_CONTAINERID", "-abc")]
    [InlineData("CNI_CONTAINERID", "abc/def")]
    [InlineData("CNI_IFNAME", "")]
    [InlineData("CNI_IFNAME", "a-very-long-ifname0")]
    [InlineData("CNI_IFNAME", "eth/0")]
    [InlineData("CNI_IFNAME", "..")]
    [InlineData("CNI_NETNS", "")]
    [InlineData("CNI_NETNS", "run/netns/x")]
    [InlineData("CNI_NETNS", "/run/netns/../../etc/passwd")]
    [InlineData("CNI_NETNS", "/run/netns/x\ny")]
    [InlineData("CNI_ARGS", "K8S_POD_NAME=c1;Bogus=1")]
    [InlineData("CNI_ARGS", "IgnoreUnknown=1;=x")]
    [InlineData("CNI_ARGS", "IgnoreUnknown=1;novalue")]
    [InlineData("CNI_ARGS", "IP=198.19.0.300")]
    [InlineData("CNI_ARGS", "IP=2001:db8::1")]
    [InlineData("CNI_ARGS", "IP=0198.19.0.3")]
    public void Bad_environment_is_code_4(string variable, string value)
    {
        var env = Env();
        env[variable] = value;
        var ex = Assert.Throws<CniException>(() => CniEnvironment.Parse(Lookup(env)));
        Assert.Equal(CniCode.InvalidEnvironment, ex.Code);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void Missing_command_is_code_4()
    {
        var env = Env();
        env.Remove("CNI_COMMAND");
        Assert.Equal(CniCode.InvalidEnvironment, Assert.Throws<CniException>(() => CniEnvironment.Parse(Lookup(env))).Code);
    }

    [Fact]
    public void Del_may_come_without_a_namespace()
    {
        var env = Env("DEL");
        env["CNI_NETNS"] = "";
        Assert.Equal("", CniEnvironment.Parse(Lookup(env)).Netns);
    }

    [Fact]
    public void Cni_args_give_static_ip_and_accept_podmans_mac_and_unknown_keys_with_ignore_unknown()
    {
        var args = CniArgs.Parse("IgnoreUnknown=1;K8S_POD_NAME=eco-c1;MAC=02:00:c6:12:4f:09;IP=198.19.79.9;Whatever=x");
        Assert.Equal("eco-c1", args.PodName);
        Assert.Equal("198.19.79.9", args.Ip!.ToString());
    }

    [Fact]
    public void Cni_args_longer_than_the_bound_are_refused()
    {
        var ex = Assert.Throws<CniException>(() => CniArgs.Parse("IgnoreUnknown=1;" + new string('a', 5000) + "=1"));
        Assert.Equal(CniCode.InvalidEnvironment, ex.Code);
    }
}
