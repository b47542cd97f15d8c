using System.Collections.Immutable;
using System.Net;
using CsCheck;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

/// <summary>ServiceSpec 1.0 (record type 5), its rules, the 2.1 endpoint flags, and the edge check of table svc.</summary>
public class ServiceRecordTests
{
    const string Key = "0000000000000000000000000000000000000000000000000000000000000000";

    [Fact]
    public void Service_round_trips_and_encoding_is_canonical() =>
        RecordGen.Service.Sample(s =>
        {
            var bytes = RecordCodec.Encode(s);
            var back = RecordCodec.DecodeService(bytes);
            Assert.Equal(s, back);
            Assert.Equal(bytes, RecordCodec.Encode(back));
        }, iter: 2_000);

    [Fact]
    public void Endpoint_flags_of_format_2_1_round_trip() =>
        RecordGen.Endpoint21.Sample(e =>
        {
            var replicated = e with { Netns = "", Ifname = "" };
            var back = RecordCodec.DecodeEndpoint(RecordCodec.Encode(replicated), replicated.Id);
            Assert.Equal(replicated, back);
            Assert.Equal(e.Unhealthy, back.Unhealthy);
            Assert.Equal(e.HostLeg, back.HostLeg);
        }, iter: 1_000);

    [Fact]
    public void Endpoints_are_written_as_2_1() => Assert.Equal(0x21, RecordCodec.EndpointFormatVersion);

    [Fact]
    public void A_2_0_endpoint_decodes_with_both_new_flags_false()
    {
        var e = RecordGen.SampleEndpoint() with { Netns = "", Ifname = "", Disabled = true };
        var bytes = RecordCodec.Encode(e);
        bytes[1] = 0x20;
        var back = RecordCodec.DecodeEndpoint(bytes, e.Id);
        Assert.Equal(e, back);
        Assert.False(back.Unhealthy);
        Assert.False(back.HostLeg);
    }

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    public void A_2_0_endpoint_with_a_2_1_flag_is_rejected(int flag)
    {
        var e = RecordGen.SampleEndpoint() with { Netns = "", Ifname = "" };
        var bytes = RecordCodec.Encode(e with { Unhealthy = flag == 8, HostLeg = flag == 16 });
        bytes[1] = 0x20;
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeEndpoint(bytes, e.Id));
        Assert.Contains("reserved flag bits", ex.Message);
    }

    [Fact]
    public void A_newer_endpoint_minor_keeps_the_flags_it_knows_and_ignores_the_rest()
    {
        var e = RecordGen.SampleEndpoint() with { Netns = "", Ifname = "", Unhealthy = true, HostLeg = true };
        var bytes = RecordCodec.Encode(e);
        bytes[1] = 0x22;
        int flagsAt = 2 + 1 + e.Network.Length + 1 + e.Name.Length + 1 + e.Aliases.Sum(a => 1 + a.Length);
        Assert.Equal(1 | 2 | 8 | 16, bytes[flagsAt]);
        bytes[flagsAt] |= 0x80;
        Assert.Equal(e, RecordCodec.DecodeEndpoint(bytes, e.Id));
    }

    [Fact]
    public void The_legacy_format_drops_the_2_1_flags()
    {
        var e = RecordGen.SampleEndpoint() with { Unhealthy = true, HostLeg = true };
        var back = RecordCodec.DecodeEndpoint(RecordCodec.Encode(e, EndpointFormat.Legacy), e.Id);
        Assert.Equal(e with { Unhealthy = false, HostLeg = false }, back);
    }

    [Fact]
    public void A_newer_service_minor_may_append_fields_that_are_ignored()
    {
        var s = RecordGen.SampleService();
        byte[] bytes = [.. RecordCodec.Encode(s), 1, 2, 3];
        bytes[1] = 0x11;
        Assert.Equal(s, RecordCodec.DecodeService(bytes));
        bytes[1] = 0x10;
        Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeService(bytes));
    }

    [Fact]
    public void Hostile_service_bytes_give_only_format_errors() =>
        Gen.Byte.Array[0, 200].Sample(body =>
        {
            byte[] bytes = [5, 0x10, .. body];
            var ex = Record.Exception(() => RecordCodec.DecodeService(bytes));
            if (ex is not null) Assert.IsType<RecordFormatException>(ex);
        }, iter: 20_000);

    [Fact]
    public void A_huge_network_count_fails_before_allocating()
    {
        byte[] bytes = [5, 0x10, 1, (byte)'a', 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeService(bytes));
        Assert.Contains("network count", ex.Message);
    }

    static string? Problem(ServiceSpec s) => Record.Exception(s.Validate)?.Message;

    static readonly ServiceSpec Sample = RecordGen.SampleService();
    static readonly ServiceNetwork Front = Sample.Networks[0];

    public static TheoryData<string, ServiceSpec> Broken => new()
    {
        { "Name 'Web'", Sample with { Name = "Web" } },
        { "1..16 networks", Sample with { Networks = [] } },
        { "1..16 networks", Sample with { Networks = [.. Enumerable.Range(0, 17).Select(i => new ServiceNetwork($"n{i}", IPAddress.Parse($"198.19.{i}.9")))] } },
        { "listed twice", Sample with { Networks = [Front, Front] } },
        { "VIP on frontend is missing", Sample with { Networks = [Front with { Vip = null }] } },
        { "not IPv4", Sample with { Networks = [Front with { Vip = IPAddress.Parse("fd00::1") }] } },
        { "VIP in dnsrr mode", Sample with { Mode = ServiceMode.Dnsrr } },
        { "Mode 7", Sample with { Mode = (ServiceMode)7 } },
        { "PublishMode 3", Sample with { PublishMode = (PublishMode)3 } },
        { "Balance 2", Sample with { Balance = (BalanceMode)2 } },
        { "more than 64", Sample with { Ports = [.. Enumerable.Range(1, 65).Select(i => new ServicePortSpec($"p{i}", "tcp", (ushort)i, 0, null))] } },
        { "not tcp or udp", Sample with { Ports = [new ServicePortSpec("x", "sctp", 80, 0, null)] } },
        { "target 0", Sample with { Ports = [new ServicePortSpec("x", "tcp", 0, 0, null)] } },
        { "no published port", Sample with { Ports = [new ServicePortSpec("x", "tcp", 80, 0, IPAddress.Loopback)] } },
        { "host address ::1 is not IPv4", Sample with { Ports = [new ServicePortSpec("x", "tcp", 80, 80, IPAddress.IPv6Loopback)] } },
        { "port name", Sample with { Ports = [new ServicePortSpec("a_b", "tcp", 80, 0, null)] } },
        { "target port 80/tcp is listed twice", Sample with { Ports = [new ServicePortSpec("a", "tcp", 80, 0, null), new ServicePortSpec("b", "tcp", 80, 81, null)] } },
        { "port name a is used twice", Sample with { Ports = [new ServicePortSpec("a", "tcp", 80, 0, null), new ServicePortSpec("a", "tcp", 81, 0, null)] } },
        { "published port 8080/tcp is listed twice", Sample with { Ports = [new ServicePortSpec("a", "tcp", 80, 8080, null), new ServicePortSpec("b", "tcp", 81, 8080, null)] } },
        { "AffinitySeconds 86401", Sample with { AffinitySeconds = 86_401 } },
        { "AffinitySeconds -1", Sample with { AffinitySeconds = -1 } },
        { "DrainGraceSeconds 3601", Sample with { DrainGraceSeconds = 3601 } },
        { "default ImmutableArray", Sample with { Ports = default } },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public void A_broken_rule_is_named(string expected, ServiceSpec spec)
    {
        Assert.Contains(expected, Problem(spec));
        Assert.Throws<InvalidRecordException>(() => RecordCodec.Encode(spec));
    }

    [Fact]
    public void The_same_published_port_on_different_host_addresses_or_protocols_is_allowed()
    {
        var spec = Sample with
        {
            Ports =
            [
                new ServicePortSpec("a", "tcp", 80, 8080, null), new ServicePortSpec("b", "tcp", 81, 8080, IPAddress.Loopback),
                new ServicePortSpec("c", "udp", 80, 8080, null), new ServicePortSpec("a", "udp", 82, 0, null),
            ],
        };
        Assert.Null(Problem(spec));
    }

    [Fact]
    public void A_vip_must_be_a_host_address_of_its_subnet()
    {
        var subnet = IPNetwork.Parse("198.19.7.0/24");
        var gw = IPAddress.Parse("198.19.7.1");
        Assert.Null(ServiceSpec.VipProblem(IPAddress.Parse("198.19.7.254"), subnet, gw));
        Assert.Contains("outside", ServiceSpec.VipProblem(IPAddress.Parse("198.19.8.2"), subnet, gw));
        Assert.Contains("broadcast", ServiceSpec.VipProblem(IPAddress.Parse("198.19.7.255"), subnet, gw));
        Assert.Contains("broadcast", ServiceSpec.VipProblem(IPAddress.Parse("198.19.7.0"), subnet, gw));
        Assert.Contains("gateway", ServiceSpec.VipProblem(gw, subnet, gw));
    }

    static CatalogEntry Entry(string key, byte[] value, bool tombstone = false) => new(Tables.Services, key, "h9", 7, tombstone, value);

    [Fact]
    public void The_edge_accepts_a_service_under_its_own_name_from_any_writer() =>
        Assert.Equal(EntryVerdict.Valid, EntryValidator.Check(Entry("web", RecordCodec.Encode(Sample)), out _));

    [Fact]
    public void The_edge_refuses_a_service_under_another_key()
    {
        Assert.Equal(EntryVerdict.KeyMismatch, EntryValidator.Check(Entry("api", RecordCodec.Encode(Sample)), out var why));
        Assert.Contains("holds service web", why);
        Assert.Equal(EntryVerdict.KeyMismatch, EntryValidator.Check(Entry("Not_A_Name", [], tombstone: true), out _));
    }

    [Fact]
    public void The_edge_refuses_an_undecodable_service()
    {
        var bytes = RecordCodec.Encode(Sample);
        bytes[^1] ^= 0xff;
        Assert.Equal(EntryVerdict.Undecodable, EntryValidator.Check(Entry("web", bytes[..^3]), out var why));
        Assert.StartsWith("svc/web:", why);
    }

    [Fact]
    public void Networks_and_services_are_cluster_owned_and_endpoints_are_not()
    {
        Assert.True(Tables.IsClusterOwned(Tables.Services));
        Assert.True(Tables.IsClusterOwned(Tables.Networks));
        Assert.False(Tables.IsClusterOwned(Tables.Endpoints));
        Assert.False(Tables.IsClusterOwned(Tables.Claims));
    }

    [Fact]
    public void Services_compare_by_content()
    {
        var copy = Sample with { Ports = ImmutableArray.Create([.. Sample.Ports]), Networks = ImmutableArray.Create([.. Sample.Networks]) };
        Assert.Equal(Sample, copy);
        Assert.NotEqual(Sample, copy with { Seed = 1 });
    }
}
