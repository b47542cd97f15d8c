using CsCheck;
using Discovery.Model;
using Discovery.Model.Claims;
using Xunit;

namespace Discovery.Tests;

/// <summary>The ResourceClaim record (type 4): round trip, hostile bytes, and the rules its fields obey.</summary>
public class ResourceClaimCodecTests
{
    static Gen<string> Chars(string alphabet, int min, int max) => Gen.Char[alphabet].Array[min, max].Select(a => new string(a));

    static readonly Gen<ResourceClaim> Claims =
        Gen.Select(Chars("abcdefghijklmnopqrstuvwxyz", 1, 16), RecordGen.NetworkName,
                Chars("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:_/-", 1, 64), RecordGen.Node)
           .Select((k, s, r, n) => new ResourceClaim(k, s, r, n));

    static readonly ResourceClaim Sample = new(ClaimKinds.Block, "web", "198.19.1.64/26", "h1");

    [Fact]
    public void Resource_claim_round_trips_and_encodes_canonically() =>
        Claims.Sample(claim =>
        {
            var bytes = RecordCodec.Encode(claim);
            var decoded = RecordCodec.DecodeResourceClaim(bytes);
            Assert.Equal(claim, decoded);
            Assert.Equal(bytes, RecordCodec.Encode(decoded));
        }, iter: 2000);

    [Fact]
    public void Random_bytes_behind_a_valid_header_give_only_format_errors() =>
        Gen.Byte.Array[0, 200].Sample(body =>
        {
            var ex = Record.Exception(() => RecordCodec.DecodeResourceClaim([4, RecordCodec.FormatVersion, .. body]));
            if (ex is null) return;
            Assert.Equal(nameof(ResourceClaim), Assert.IsType<RecordFormatException>(ex).RecordType);
        }, iter: 20_000);

    [Fact]
    public void Every_truncation_and_bit_flip_is_rejected_or_re_encodes_to_the_same_bytes() =>
        Claims.Sample(claim =>
        {
            var bytes = RecordCodec.Encode(claim);
            for (var length = 0; length < bytes.Length; length++)
                Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeResourceClaim(bytes[..length]));
            for (var bit = 0; bit < bytes.Length * 8; bit++)
            {
                var flipped = (byte[])bytes.Clone();
                flipped[bit / 8] ^= (byte)(1 << (bit % 8));
                ResourceClaim? decoded = null;
                var ex = Record.Exception(() => decoded = RecordCodec.DecodeResourceClaim(flipped));
                if (ex is not null) { Assert.IsType<RecordFormatException>(ex); continue; }
                if (flipped[1] == RecordCodec.FormatVersion) Assert.Equal(flipped, RecordCodec.Encode(decoded!));
            }
        }, iter: 200);

    [Fact]
    public void Another_record_type_is_named_in_the_error()
    {
        var ex = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeResourceClaim(RecordCodec.Encode(RecordGen.SampleClaim())));
        Assert.Equal("ResourceClaim record: record type byte is 3 (BlockClaim), expected 4", ex.Message);
        var other = Assert.Throws<RecordFormatException>(() => RecordCodec.DecodeBlockClaim(RecordCodec.Encode(Sample)));
        Assert.Contains("record type byte is 4 (ResourceClaim)", other.Message);
    }

    [Theory]
    [InlineData("", "web", "1", "h1", "Kind")]
    [InlineData("Blk", "web", "1", "h1", "Kind")]
    [InlineData("blk", "Web", "1", "h1", "Scope")]
    [InlineData("blk", "web", "", "h1", "Resource")]
    [InlineData("blk", "web", "a@b", "h1", "Resource")]
    [InlineData("blk", "web", "a b", "h1", "Resource")]
    [InlineData("blk", "web", "1", "h 1", "Node")]
    public void Broken_rules_are_refused_on_encode(string kind, string scope, string resource, string node, string field)
    {
        var ex = Assert.Throws<InvalidRecordException>(() => RecordCodec.Encode(new ResourceClaim(kind, scope, resource, node)));
        Assert.Contains(field, ex.Message);
    }

    [Fact]
    public void The_key_names_one_claim_and_starts_with_its_resource_prefix()
    {
        Assert.Equal("blk/web/198.19.1.64/26@h1", Sample.Key);
        Assert.StartsWith(ResourceClaim.PrefixOf(ClaimKinds.Block, "web", "198.19.1.64/26"), Sample.Key);
        Assert.StartsWith(ResourceClaim.PrefixOf(ClaimKinds.Block, "web"), Sample.Key);
        // A node name with '/' or '@' cannot make two claims share a key: the resource holds neither '@' nor does the kind or scope hold '/'.
        Assert.NotEqual(new ResourceClaim("blk", "web", "a/b", "c").Key, new ResourceClaim("blk", "web", "a", "b@c").Key);
    }
}
