using System.Net;
using Discovery.Api;
using Discovery.Model;
using Discovery.Overlay;
using Xunit;

namespace Discovery.Tests.Overlay;

public sealed class NetworkDefaultsTests
{
    private static readonly OverlayOptions Options = new() { Node = "n1" };
    private static readonly NetworkSpec Web = new("web", IPNetwork.Parse("198.19.0.0/24"), IPAddress.Parse("198.19.0.1"), 4097, 1450, 28);

    private static OverlayException Fails(CreateNetworkRequest req) =>
        Assert.Throws<OverlayException>(() => NetworkDefaults.Resolve(req, [Web], Options));

    [Fact]
    public void Defaults_pick_the_next_free_slash_24_the_first_host_as_gateway_and_the_next_vni()
    {
        var spec = NetworkDefaults.Resolve(new CreateNetworkRequest("db"), [Web], Options);
        Assert.Equal("198.19.1.0/24", spec.Subnet.ToString());
        Assert.Equal("198.19.1.1", spec.Gateway.ToString());
        Assert.Equal(4098, spec.Vni);
        Assert.Equal(1450, spec.Mtu);
    }

    [Fact]
    public void Overlapping_subnet_is_a_conflict() =>
        Assert.Equal(OverlayErrorKind.Conflict, Fails(new("db", "198.19.0.128/25")).Kind);

    [Fact]
    public void Used_vni_is_a_conflict() =>
        Assert.Contains("already used by network web", Fails(new("db", "198.19.5.0/24", Vni: 4097)).Message);

    [Theory]
    [InlineData("banana", null, null)]
    [InlineData("198.19.5.1/24", null, null)]      // host bits set
    [InlineData("198.19.5.0/30", null, null)]      // too small
    [InlineData("2001:db8::/64", null, null)]
    [InlineData("198.19.5.0/24", "198.19.6.1", null)]
    [InlineData("198.19.5.0/24", "198.19.5.255", null)]
    [InlineData("198.19.5.0/24", null, 0)]
    [InlineData("198.19.5.0/24", null, 16777216)]
    public void Bad_input_is_invalid(string subnet, string? gateway, int? vni) =>
        Assert.Equal(OverlayErrorKind.Invalid, Fails(new("db", subnet, gateway, vni)).Kind);

    [Theory]
    [InlineData("Web")]
    [InlineData("-web")]
    [InlineData("we b")]
    [InlineData("a.b")]
    public void Network_names_must_be_dns_labels(string name) =>
        Assert.Equal(OverlayErrorKind.Invalid, Assert.Throws<OverlayException>(() => Naming.CheckNetwork(name)).Kind);

    [Fact]
    public void Mac_is_02_42_followed_by_the_ip() =>
        Assert.Equal("02:42:c6:13:01:0a", MacAddress.Format(MacAddress.FromIPv4(IPAddress.Parse("198.19.1.10"))));

    [Theory]
    [InlineData(23)]          // larger than the /24 subnet
    [InlineData(33)]
    [InlineData(-1)]
    [InlineData(int.MinValue)]
    [InlineData(int.MaxValue)]
    public void A_block_prefix_outside_the_subnet_and_32_is_one_clear_error(int prefix)
    {
        var e = Fails(new("db", "198.19.5.0/24", BlockPrefixLength: prefix));
        Assert.Equal(OverlayErrorKind.Invalid, e.Kind);
        Assert.Contains($"block prefix /{prefix}", e.Message);
    }

    [Fact]
    public void A_block_prefix_that_splits_a_subnet_into_too_many_blocks_is_refused() =>
        // Pure validation, nothing is sent: a /8 alone in the catalog, split into 2^24 blocks.
        Assert.Contains("more than", Assert.Throws<OverlayException>(() =>
            NetworkDefaults.Resolve(new CreateNetworkRequest("db", "198.0.0.0/8", BlockPrefixLength: 32), [], Options)).Message);

    [Fact]
    public void A_block_size_that_is_not_a_power_of_two_has_no_prefix() =>
        Assert.Equal([null, null, null, 26, 32], new long[] { 0, -64, 65, 64, 1 }.Select(n => Discovery.Overlay.Ipam.BlockLayout.PrefixForSize(n)).ToArray());
}
