using System.Collections.Immutable;
using System.Net;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

/// <summary>Semantic rules, checked by Validate(), by Encode before writing, and by Decode after reading.</summary>
public class RecordValidationTests
{
    static readonly NetworkSpec Net = RecordGen.SampleNetwork();
    static readonly EndpointRecord Ep = RecordGen.SampleEndpoint();

    static void Rejected(NetworkSpec spec, string expected)
    {
        var ex = Assert.Throws<InvalidRecordException>(spec.Validate);
        Assert.Contains(expected, ex.Message);
        Assert.Throws<InvalidRecordException>(() => RecordCodec.Encode(spec));
    }

    static void Rejected(EndpointRecord record, string expected)
    {
        var ex = Assert.Throws<InvalidRecordException>(record.Validate);
        Assert.Contains(expected, ex.Message);
        Assert.Throws<InvalidRecordException>(() => RecordCodec.Encode(record));
    }

    [Fact]
    public void Samples_are_valid()
    {
        Net.Validate();
        Ep.Validate();
        RecordGen.SampleClaim().Validate();
    }

    [Theory]
    [InlineData(1, true)]
    [InlineData(16_777_215, true)]
    [InlineData(0, false)]
    [InlineData(16_777_216, false)]
    [InlineData(-1, false)]
    public void Vni_must_be_in_1_to_16777215(int vni, bool valid)
    {
        if (valid) (Net with { Vni = vni }).Validate();
        else Rejected((Net with { Vni = vni }), $"Vni {vni} is outside 1..16777215");
    }

    [Theory]
    [InlineData("Frontend")]
    [InlineData("-front")]
    [InlineData("front-")]
    [InlineData("front_end")]
    [InlineData("")]
    [InlineData("a123456789012345678901234567890123456789012345678901234567890123")]
    public void Network_name_must_be_a_lower_case_dns_label(string name) => Rejected(Net with { Name = name }, "Name");

    [Fact]
    public void Subnet_must_be_ipv4_with_room_for_hosts()
    {
        Rejected(Net with { Subnet = IPNetwork.Parse("fd00::/64"), Gateway = IPAddress.Parse("fd00::1") }, "is not IPv4");
        Rejected(Net with { Subnet = IPNetwork.Parse("198.19.0.0/31"), Gateway = IPAddress.Parse("198.19.0.1"), BlockPrefixLength = 31 }, "prefix length must be at most 30");
    }

    [Theory]
    [InlineData("198.18.0.1", "outside")]
    [InlineData("198.19.0.0", "network or broadcast")]
    [InlineData("198.19.255.255", "network or broadcast")]
    public void Gateway_must_be_a_host_address_inside_the_subnet(string gateway, string expected) =>
        Rejected(Net with { Gateway = IPAddress.Parse(gateway) }, expected);

    [Theory]
    [InlineData(15)]
    [InlineData(33)]
    public void Block_prefix_length_must_be_between_the_subnet_prefix_and_32(int length) =>
        Rejected(Net with { BlockPrefixLength = length }, $"BlockPrefixLength {length}");

    [Theory]
    [InlineData("02:42:C6:13:00:05", "lower-case")]
    [InlineData("02-42-c6-13-00-05", "lower-case")]
    [InlineData("02:42:c6:13:00", "is not xx")]
    [InlineData("03:42:c6:13:00:05", "multicast")]
    public void Mac_must_be_lower_case_unicast(string mac, string expected) => Rejected(Ep with { Mac = mac }, expected);

    [Fact]
    public void Id_must_be_64_lower_case_hex()
    {
        Rejected(Ep with { Id = Ep.Id.ToUpperInvariant() }, "Id");
        Rejected(Ep with { Id = Ep.Id[..63] }, "Id");
    }

    [Fact]
    public void Addresses_must_have_the_right_family_and_no_scope()
    {
        Rejected(Ep with { Address = IPAddress.Parse("fd00::5") }, "Address fd00::5 is not IPv4");
        Rejected(Ep with { Address6 = IPAddress.Parse("198.19.0.5") }, "Address6 198.19.0.5 is not IPv6");
        Rejected(Ep with { Vtep = IPAddress.Parse("fe80::1%2") }, "scope id");
        Rejected(Ep with { Address = IPAddress.Any }, "unspecified");
    }

    [Theory]
    [InlineData("web..1")]
    [InlineData(".web")]
    [InlineData("web server")]
    [InlineData("wéb")]
    public void Names_and_aliases_must_be_dns_names(string name)
    {
        Rejected(Ep with { Name = name }, "Name");
        Rejected(Ep with { Aliases = ["ok", name] }, "Alias");
        Rejected(Ep with { Service = name }, "Service");
    }

    [Theory]
    [InlineData("eth0123456789012")]
    [InlineData("eth/0")]
    [InlineData("eth 0")]
    public void Ifname_follows_linux_rules(string ifname) => Rejected(Ep with { Ifname = ifname }, "Ifname");

    [Fact]
    public void Ports_need_a_known_protocol_and_a_nonzero_number()
    {
        Rejected(Ep with { Ports = [new ServicePort("http", "TCP", 80)] }, "protocol 'TCP'");
        Rejected(Ep with { Ports = [new ServicePort("http", "tcp", 0)] }, "number 0");
        Rejected(Ep with { Ports = [new ServicePort("_http", "tcp", 80)] }, "port name");
    }

    [Fact]
    public void Too_many_aliases_are_rejected() =>
        Rejected(Ep with { Aliases = [.. Enumerable.Range(0, 257).Select(i => $"a{i}")] }, "more than 256");

    [Fact]
    public void Default_immutable_arrays_are_a_validation_error_not_a_crash()
    {
        Rejected(Ep with { Aliases = default }, "Aliases is a default ImmutableArray");
        Rejected(Ep with { Ports = default(ImmutableArray<ServicePort>) }, "Ports is a default ImmutableArray");
    }

    [Fact]
    public void Null_fields_are_a_validation_error_not_a_crash()
    {
        Rejected(Ep with { Name = null! }, "Name");
        Rejected(Ep with { Vtep = null! }, "Vtep is missing");
        Rejected(Net with { Gateway = null! }, "Gateway is missing");
    }

    [Fact]
    public void Block_claim_node_must_be_printable()
    {
        var ex = Assert.Throws<InvalidRecordException>(() => RecordCodec.Encode(RecordGen.SampleClaim() with { Node = "h 1" }));
        Assert.Equal("BlockClaim", ex.RecordType);
        Assert.IsAssignableFrom<ArgumentException>(ex);
    }
}
