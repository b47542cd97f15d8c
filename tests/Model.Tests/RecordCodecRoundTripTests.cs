using CsCheck;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

public class RecordCodecRoundTripTests
{
    [Fact]
    public void Network_spec_round_trips() =>
        RecordGen.Network.Sample(spec =>
        {
            var bytes = RecordCodec.Encode(spec);
            Assert.Equal(spec, RecordCodec.DecodeNetwork(bytes));
        }, iter: 2000);

    [Fact]
    public void Endpoint_record_round_trips_with_both_families_optional_fields_and_arrays() =>
        RecordGen.Endpoint.Sample(record =>
        {
            var bytes = RecordCodec.Encode(record);
            // 2.0 replicates everything but the owner's local bookkeeping; the id comes back from the key.
            Assert.Equal(record with { Netns = "", Ifname = "" }, RecordCodec.DecodeEndpoint(bytes, record.Id));
        }, iter: 2000);

    [Fact]
    public void Endpoint_record_round_trips_in_the_legacy_format_with_its_bookkeeping() =>
        RecordGen.Endpoint.Sample(record =>
        {
            var bytes = RecordCodec.Encode(record, EndpointFormat.Legacy);
            Assert.Equal(RecordCodec.FormatVersion, bytes[1]);
            Assert.Equal(record, RecordCodec.DecodeEndpoint(bytes, record.Id));
        }, iter: 2000);

    [Fact]
    public void Block_claim_round_trips_for_ipv4_and_ipv6_blocks() =>
        RecordGen.Block.Sample(claim =>
        {
            var bytes = RecordCodec.Encode(claim);
            Assert.Equal(claim, RecordCodec.DecodeBlockClaim(bytes));
        }, iter: 2000);

    [Fact]
    public void Encoding_is_canonical_decode_then_encode_gives_the_same_bytes() =>
        RecordGen.Endpoint.Sample(record =>
        {
            var bytes = RecordCodec.Encode(record);
            Assert.Equal(bytes, RecordCodec.Encode(RecordCodec.DecodeEndpoint(bytes, record.Id)));
            var legacy = RecordCodec.Encode(record, EndpointFormat.Legacy);
            Assert.Equal(legacy, RecordCodec.Encode(RecordCodec.DecodeEndpoint(legacy, record.Id), EndpointFormat.Legacy));
        }, iter: 500);

    [Fact]
    public void Endpoint_equality_compares_aliases_and_ports_by_content()
    {
        var a = RecordGen.SampleEndpoint();
        var b = a with { Aliases = [.. a.Aliases], Ports = [.. a.Ports] };
        Assert.Equal(a, b);
        Assert.NotEqual(a, b with { Aliases = [.. a.Aliases, "extra"] });
    }

    [Fact]
    public void Endpoint_with_many_aliases_and_ports_round_trips()
    {
        var record = RecordGen.SampleEndpoint() with
        {
            Aliases = [.. Enumerable.Range(0, 256).Select(i => $"alias-{i}")],
            Ports = [.. Enumerable.Range(1, 256).Select(i => new ServicePort($"p{i}", i % 2 == 0 ? "tcp" : "udp", (ushort)(i * 200)))],
            Service = null, Address6 = null, Disabled = true,
        };
        Assert.Equal(record, RecordCodec.DecodeEndpoint(RecordCodec.Encode(record, EndpointFormat.Legacy), record.Id));
    }

    [Fact]
    public void Encoding_is_compact()
    {
        // Header 2 + mac 6 + three addresses + short strings: well under 200 bytes; 1.0 adds the id and the bookkeeping.
        Assert.InRange(RecordCodec.Encode(RecordGen.SampleEndpoint()).Length, 50, 200);
        Assert.Equal(RecordCodec.Encode(RecordGen.SampleEndpoint(), EndpointFormat.Legacy).Length,
            RecordCodec.Encode(RecordGen.SampleEndpoint()).Length + 32 + 1 + "/run/netns/c1".Length + 1 + "eth0".Length);
        Assert.InRange(RecordCodec.Encode(RecordGen.SampleNetwork()).Length, 10, 40);
    }
}
