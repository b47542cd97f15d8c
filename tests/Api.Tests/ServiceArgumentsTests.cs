using Discovery.Api;
using Xunit;

namespace Discovery.Tests.Api;

/// <summary>The port specs and option words of `service create|update`, as the CLI and the agent read them.</summary>
public sealed class ServiceArgumentsTests
{
    [Theory]
    [InlineData("8080:80", "80", "tcp", 80, 8080, null)]
    [InlineData("http=8080:80", "http", "tcp", 80, 8080, null)]
    [InlineData("8053:53/udp", "53", "udp", 53, 8053, null)]
    [InlineData("127.0.0.1:8080:80", "80", "tcp", 80, 8080, "127.0.0.1")]
    [InlineData("web-1=198.18.0.1:1:65535/tcp", "web-1", "tcp", 65535, 1, "198.18.0.1")]
    public void Publish_specs_are_read_with_defaults(string spec, string name, string protocol, int target, int published, string? hostIp) =>
        Assert.Equal(new ServicePortRequest(name, protocol, target, published, hostIp), ServiceArguments.ParsePublish(spec));

    [Theory]
    [InlineData("80", "80", "tcp", 80)]
    [InlineData("dns=53/udp", "dns", "udp", 53)]
    public void Port_specs_are_read_with_defaults(string spec, string name, string protocol, int target) =>
        Assert.Equal(new ServicePortRequest(name, protocol, target), ServiceArguments.ParsePort(spec));

    [Theory]
    [InlineData("", "must be [NAME=][IP:]PUBLISHED:TARGET")]
    [InlineData("80", "must be [NAME=][IP:]PUBLISHED:TARGET")]
    [InlineData("1:2:3:4", "an IPv6 host address is not supported")]
    [InlineData("70000:80", "published port 70000 is out of range 1..65535")]
    [InlineData("0:80", "published port 0 is out of range 1..65535")]
    [InlineData("8080:0", "target port 0 is out of range 1..65535")]
    [InlineData("8080:99999999999", "target port '99999999999' is not a number")]
    [InlineData("8080:-1", "target port '-1' is not a number")]
    [InlineData("8080:+80", "target port '+80' is not a number")]
    [InlineData("8080: 80", "target port ' 80' is not a number")]
    [InlineData("8080:80/sctp", "protocol 'sctp' must be tcp or udp")]
    [InlineData("8080:80/TCP", "protocol 'TCP' must be tcp or udp")]
    [InlineData("8080:80/", "protocol '' must be tcp or udp")]
    [InlineData("=8080:80", "port name '' must be 1..63")]
    [InlineData("a_b=8080:80", "port name 'a_b' must be 1..63")]
    [InlineData("a=b=8080:80", "published port 'b=8080' is not a number")]
    [InlineData("host:8080:80", "host address 'host' is not an IPv4 address")]
    [InlineData("0.0.0.0:8080:80", "leave out 0.0.0.0")]
    [InlineData("1.2.3:8080:80", "host address '1.2.3' is not an IPv4 address")]
    [InlineData("8080:80\n", "target port '80?' is not a number")]
    public void Bad_publish_specs_are_one_line(string spec, string expected)
    {
        var ex = Assert.Throws<ServiceArgumentException>(() => ServiceArguments.ParsePublish(spec));
        Assert.Contains(expected, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Theory]
    [InlineData("8080:80", "publish a port with --publish")]
    [InlineData("65536", "target port 65536 is out of range")]
    [InlineData("x", "target port 'x' is not a number")]
    [InlineData("80/icmp", "protocol 'icmp' must be tcp or udp")]
    public void Bad_port_specs_are_one_line(string spec, string expected) =>
        Assert.Contains(expected, Assert.Throws<ServiceArgumentException>(() => ServiceArguments.ParsePort(spec)).Message);

    [Fact]
    public void A_huge_spec_is_refused_with_a_bounded_message()
    {
        var ex = Assert.Throws<ServiceArgumentException>(() => ServiceArguments.ParsePublish(new string('9', 100_000)));
        Assert.True(ex.Message.Length < 200);
    }

    [Fact]
    public void Random_text_gives_a_port_or_one_argument_error()
    {
        var rng = new Random(1);
        const string alphabet = "0123456789:=/.abtcpud-_ \u00e9\0";
        for (var i = 0; i < 20_000; i++)
        {
            var s = new string([.. Enumerable.Range(0, rng.Next(0, 24)).Select(_ => alphabet[rng.Next(alphabet.Length)])]);
            foreach (var parse in new Func<string, ServicePortRequest>[] { ServiceArguments.ParsePublish, ServiceArguments.ParsePort })
            {
                try
                {
                    var p = parse(s);
                    Assert.InRange(p.Target, 1, 65535);
                    Assert.InRange(p.Published, 0, 65535);
                    Assert.Contains(p.Protocol, new[] { "tcp", "udp" });
                }
                catch (ServiceArgumentException ex) { Assert.DoesNotContain('\n', ex.Message); }
            }
        }
    }

    [Theory]
    [InlineData("none", 0)]
    [InlineData(null, 0)]
    [InlineData("client-ip", 10_800)]
    [InlineData("client-ip:30", 30)]
    [InlineData("client-ip:86400", 86_400)]
    public void Affinity_words_are_read(string? text, int seconds)
    {
        Assert.Equal(seconds, ServiceArguments.AffinitySeconds(text));
        if (seconds > 0) Assert.Equal(seconds, ServiceArguments.AffinitySeconds(ServiceArguments.AffinityText(seconds)));
    }

    [Theory]
    [InlineData("client-ip:0")]
    [InlineData("client-ip:86401")]
    [InlineData("client-ip:")]
    [InlineData("client-ip:-5")]
    [InlineData("clientip")]
    [InlineData("Client-IP")]
    public void Bad_affinity_is_refused(string text) =>
        Assert.StartsWith($"affinity '{text}' must be", Assert.Throws<ServiceArgumentException>(() => ServiceArguments.AffinitySeconds(text)).Message);

    [Fact]
    public void Word_options_name_every_choice() =>
        Assert.Equal("mode 'x' must be vip or dnsrr", Assert.Throws<ServiceArgumentException>(() => ServiceArguments.OneOf("x", "mode", ServiceArguments.Modes)).Message);
}
