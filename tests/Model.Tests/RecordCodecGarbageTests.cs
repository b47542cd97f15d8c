using CsCheck;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

/// <summary>Hostile and damaged input: decoders throw RecordFormatException and nothing else, and never hang.</summary>
public class RecordCodecGarbageTests
{
    // The catalog key endpoints are decoded under: a 2.0 record takes its id from it, a 1.x record must match it.
    const string Key = "0000000000000000000000000000000000000000000000000000000000000000";

    static readonly (string Type, Func<byte[], object> Decode)[] Decoders =
    [
        (nameof(NetworkSpec), b => RecordCodec.DecodeNetwork(b)),
        (nameof(EndpointRecord), b => RecordCodec.DecodeEndpoint(b, Key)),
        (nameof(BlockClaim), b => RecordCodec.DecodeBlockClaim(b)),
        (nameof(ServiceSpec), b => RecordCodec.DecodeService(b)),
    ];

    static readonly Gen<(int Decoder, byte[] Bytes)> ValidEncodings = Gen.OneOf(
        RecordGen.Network.Select(r => (0, RecordCodec.Encode(r))),
        RecordGen.Endpoint.Select(r => (1, RecordCodec.Encode(r))),
        RecordGen.Endpoint.Select(r => (1, RecordCodec.Encode(r with { Id = Key }, EndpointFormat.Legacy))),
        RecordGen.Block.Select(r => (2, RecordCodec.Encode(r))),
        RecordGen.Endpoint21.Select(r => (1, RecordCodec.Encode(r))),
        RecordGen.Service.Select(r => (3, RecordCodec.Encode(r))));

    /// <summary>Decoding either succeeds or throws RecordFormatException naming the record type.</summary>
    static object? DecodeOrFormatError(int decoder, byte[] bytes)
    {
        object? result = null;
        var ex = Record.Exception(() => result = Decoders[decoder].Decode(bytes));
        if (ex is null) return result;
        var format = Assert.IsType<RecordFormatException>(ex);
        Assert.Equal(Decoders[decoder].Type, format.RecordType);
        Assert.StartsWith(Decoders[decoder].Type + " record: ", format.Message);
        return null;
    }

    [Fact]
    public void Random_bytes_give_only_format_errors() =>
        Gen.Select(Gen.Int[0, Decoders.Length - 1], Gen.Byte.Array[0, 300]).Sample((d, bytes) => DecodeOrFormatError(d, bytes), iter: 20_000);

    [Fact]
    public void Random_bodies_behind_a_valid_header_give_only_format_errors() =>
        Gen.Select(Gen.Int[0, Decoders.Length - 1], Gen.Byte.Array[0, 300]).Sample((d, body) =>
            DecodeOrFormatError(d, [(byte)(d + 1), RecordCodec.FormatVersion, .. body]), iter: 20_000);

    [Fact]
    public void Every_truncation_of_a_valid_encoding_is_a_format_error() =>
        ValidEncodings.Sample((d, bytes) =>
        {
            for (int length = 0; length < bytes.Length; length++)
            {
                var ex = Assert.Throws<RecordFormatException>(() => Decoders[d].Decode(bytes[..length]));
                Assert.Equal(Decoders[d].Type, ex.RecordType);
            }
        }, iter: 300);

    [Fact]
    public void Every_bit_flip_is_rejected_or_decodes_to_a_record_that_re_encodes_to_the_flipped_bytes() =>
        ValidEncodings.Sample((d, bytes) =>
        {
            for (int bit = 0; bit < bytes.Length * 8; bit++)
            {
                var flipped = (byte[])bytes.Clone();
                flipped[bit / 8] ^= (byte)(1 << (bit % 8));
                var decoded = DecodeOrFormatError(d, flipped);
                if (decoded is null) continue;
                // Endpoints 2.x are written as 2.1, everything else as x.0.
                int written = decoded is EndpointRecord && flipped[1] >> 4 == 2 ? RecordCodec.EndpointFormatVersion & 0x0F : 0;
                if ((flipped[1] & 0x0F) > written) continue; // newer minor: tail dropped on re-encode
                var expected = (byte[])flipped.Clone();
                if ((flipped[1] & 0x0F) < written) expected[1] = RecordCodec.EndpointFormatVersion; // an older minor re-encodes as the current one
                byte[] again = decoded switch
                {
                    ServiceSpec s => RecordCodec.Encode(s),
                    NetworkSpec n => RecordCodec.Encode(n),
                    EndpointRecord e => RecordCodec.Encode(e, RecordCodec.EndpointFormatOf(flipped)!.Value),
                    BlockClaim c => RecordCodec.Encode(c),
                    _ => throw new InvalidOperationException(decoded.GetType().Name),
                };
                Assert.Equal(expected, again);
            }
        }, iter: 200);

    [Fact]
    public void Empty_input_is_truncated()
    {
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeNetwork([]));
        Assert.Contains("truncated", ex.Message);
    }

    [Fact]
    public void A_record_of_another_type_is_named_in_the_error()
    {
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeNetwork(RecordCodec.Encode(RecordGen.SampleEndpoint())));
        Assert.Equal("NetworkSpec record: record type byte is 2 (EndpointRecord), expected 1", ex.Message);
    }

    [Fact]
    public void Another_major_version_is_rejected()
    {
        var bytes = RecordCodec.Encode(RecordGen.SampleClaim());
        bytes[1] = 0x20;
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeBlockClaim(bytes));
        Assert.Contains("bad format version 2.0", ex.Message);
    }

    [Fact]
    public void Trailing_bytes_are_rejected_in_the_current_minor_version()
    {
        byte[] bytes = [.. RecordCodec.Encode(RecordGen.SampleNetwork()), 0];
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeNetwork(bytes));
        Assert.Contains("1 trailing bytes", ex.Message);
    }

    [Fact]
    public void A_newer_minor_version_may_append_fields_that_are_ignored()
    {
        var record = RecordGen.SampleEndpoint() with { Netns = "", Ifname = "" };
        byte[] bytes = [.. RecordCodec.Encode(record), 0x05, 0x01, 0x02, 0x03];
        bytes[1] = RecordCodec.EndpointFormatVersion + 1;
        Assert.Equal(record, RecordCodec.DecodeEndpoint(bytes, record.Id));
    }

    [Fact]
    public void Bad_address_family_is_rejected()
    {
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeBlockClaim(Claim(family: 5)));
        Assert.Contains("bad address family 5 for Block", ex.Message);
    }

    [Fact]
    public void Invalid_utf8_is_rejected()
    {
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeBlockClaim(Claim(network: [0xC3, 0x28])));
        Assert.Contains("Network at offset 3 is not valid UTF-8", ex.Message);
    }

    [Fact]
    public void Prefix_length_beyond_the_family_is_rejected()
    {
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeBlockClaim(Claim(prefix: 33)));
        Assert.Contains("bad prefix length 33 for Block", ex.Message);
    }

    [Fact]
    public void Network_with_host_bits_set_is_rejected()
    {
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeBlockClaim(Claim(address: [198, 19, 4, 1], prefix: 24)));
        Assert.Contains("198.19.4.1/24 has host bits set", ex.Message);
    }

    [Fact]
    public void String_longer_than_its_limit_is_rejected_before_reading_it()
    {
        // Name length 300 (varint 0xAC 0x02), with the bytes present: the limit, not truncation, stops it.
        byte[] bytes = [1, RecordCodec.FormatVersion, 0xAC, 0x02, .. new byte[300]];
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeNetwork(bytes));
        Assert.Contains("Name length 300 at offset 2 exceeds the limit of 255", ex.Message);
    }

    [Fact]
    public void Huge_alias_count_is_rejected_without_allocating()
    {
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeEndpoint(EndpointPrefixWithAliasCount([0xC0, 0x84, 0x3D]), Key));
        Assert.Contains("alias count 1000000", ex.Message);
        Assert.Contains("exceeds the limit of 256", ex.Message);
    }

    [Fact]
    public void Alias_count_larger_than_the_bytes_left_is_truncation()
    {
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeEndpoint(EndpointPrefixWithAliasCount([0xC8, 0x01]), Key));
        Assert.Contains("truncated: alias count 200", ex.Message);
    }

    [Fact]
    public void Overlong_varint_is_rejected()
    {
        byte[] bytes = [3, RecordCodec.FormatVersion, 0x88, 0x00, .. new byte[8]];
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeBlockClaim(bytes));
        Assert.Contains("not in shortest form", ex.Message);
    }

    [Fact]
    public void Varint_beyond_32_bits_is_rejected()
    {
        byte[] bytes = [3, RecordCodec.FormatVersion, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F];
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeBlockClaim(bytes));
        Assert.Contains("overflows 32 bits", ex.Message);
    }

    [Fact]
    public void Reserved_flag_bits_are_rejected_in_the_current_minor_version()
    {
        var record = RecordGen.SampleEndpoint() with { Aliases = [], Service = null, Address6 = null };
        var bytes = RecordCodec.Encode(record);
        int flagsOffset = 2 + 1 + record.Network.Length + 1 + record.Name.Length + 1;
        Assert.Equal(0, bytes[flagsOffset]);
        bytes[flagsOffset] = 0x80;
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeEndpoint(bytes, record.Id));
        Assert.Contains("reserved flag bits 0x80", ex.Message);
        var legacy = RecordCodec.Encode(record, EndpointFormat.Legacy);
        legacy[flagsOffset + 32] = 0x80;
        ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeEndpoint(legacy, record.Id));
        Assert.Contains("reserved flag bits 0x80", ex.Message);
    }

    [Fact]
    public void Unknown_port_protocol_number_is_rejected()
    {
        var record = RecordGen.SampleEndpoint() with { Ports = [new ServicePort("dns", "udp", 53)] };
        var bytes = RecordCodec.Encode(record);
        int protocolOffset = bytes.Length - 3;
        Assert.Equal(17, bytes[protocolOffset]);
        bytes[protocolOffset] = 99;
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeEndpoint(bytes, record.Id));
        Assert.Contains("unknown protocol number 99", ex.Message);
    }

    [Fact]
    public void Well_formed_bytes_that_break_a_rule_are_a_format_error()
    {
        var spec = RecordGen.SampleNetwork();
        var bytes = RecordCodec.Encode(spec);
        int vniOffset = 2 + 1 + spec.Name.Length + 6 + 5; // name, subnet (family+4+prefix), gateway (family+4)
        Assert.Equal(new byte[] { 0x81, 0x20 }, bytes[vniOffset..(vniOffset + 2)]); // 4097
        byte[] zeroVni = [.. bytes[..vniOffset], 0x00, .. bytes[(vniOffset + 2)..]];
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeNetwork(zeroVni));
        Assert.Equal("NetworkSpec record: invalid content: Vni 0 is outside 1..16777215", ex.Message);
    }

    /// <summary>A BlockClaim encoding built by hand, with parts replaceable.</summary>
    static byte[] Claim(byte[]? network = null, byte family = 4, byte[]? address = null, byte prefix = 24)
    {
        network ??= "frontend"u8.ToArray();
        address ??= [198, 19, 4, 0];
        return [3, RecordCodec.FormatVersion, (byte)network.Length, .. network, family, .. address, prefix, 2, (byte)'h', (byte)'1'];
    }

    static byte[] EndpointPrefixWithAliasCount(byte[] countVarint) =>
        [2, RecordCodec.FormatVersion, .. new byte[32], 3, (byte)'n', (byte)'e', (byte)'t', 1, (byte)'c', .. countVarint, .. new byte[20]];
}
