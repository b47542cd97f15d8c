using System.Net;
using Discovery.Lb.Rendering;
using Discovery.Lb.Selection;
using Xunit;

namespace Discovery.Tests.Rendering;

public sealed class SandboxRulesetTests
{
    [Fact]
    public void The_table_has_fixed_chains_whatever_the_services_and_the_redirect_comes_first()
    {
        var text = SandboxRuleset.Skeleton(new SandboxRules(["ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:5353"], ["ip saddr 127.0.0.11 udp sport 5353 snat to :53"], "table ip old\ndelete table ip old\n"));
        Assert.StartsWith("table ip old\ndelete table ip old\ntable ip discovery_sandbox\ndelete table ip discovery_sandbox\n", text);
        Assert.Equal(["output", "vip", "postrouting"], System.Text.RegularExpressions.Regex.Matches(text, @"chain (\S+) \{").Select(m => m.Groups[1].Value));
        var output = text[text.IndexOf("chain output", StringComparison.Ordinal)..];
        Assert.True(output.IndexOf("127.0.0.11", StringComparison.Ordinal) < output.IndexOf("jump vip", StringComparison.Ordinal));
        // One rule per tier, then the reject for everything a VIP does not balance.
        foreach (var tier in SlotTiers.All) Assert.Contains($"@{tier.Name} dnat ip to", text);
        Assert.Contains("numgen random mod 3 map @backends", text);
        Assert.Contains("jhash ip saddr . th sport mod 1021 seed 0x0 map @backends", text);
        Assert.Contains("meta l4proto tcp reject with tcp reset\n    reject\n", text);
        Assert.Contains("update @aff { ip saddr . ct original ip daddr . meta l4proto . th dport timeout 86400s : ip daddr . th dport }", text);
    }

    [Fact]
    public void Elements_are_rendered_and_chunked_by_set()
    {
        var port = new VipPort(IPAddress.Parse("198.19.2.1"), VipPort.Tcp, 80);
        var elements = new[] { LbElement.Vip(port.Vip), LbElement.TierOf(port, "r2"),
            LbElement.SlotOf(port, 0, IPAddress.Parse("198.19.3.1")), LbElement.SlotOf(port, 1, IPAddress.Parse("198.19.3.2")) };
        var chunks = SandboxRuleset.ElementChunks(elements, perChunk: 3).ToList();
        Assert.Equal(2, chunks.Count);
        Assert.Equal("add element ip discovery_sandbox vips { 198.19.2.1 }\nadd element ip discovery_sandbox r2 { 198.19.2.1 . tcp . 80 }\n" +
                     "add element ip discovery_sandbox backends { 198.19.2.1 . tcp . 80 . 0 : 198.19.3.1 . 80 }\n", chunks[0]);
        Assert.Equal("add element ip discovery_sandbox backends { 198.19.2.1 . tcp . 80 . 1 : 198.19.3.2 . 80 }\n", chunks[1]);
    }

    [Fact]
    public void Keys_use_the_kernel_register_layout_nft_sends()
    {
        // As captured from `nft add element ... { 198.19.2.1 . tcp . 80 . 3 : 198.18.9.9 . 80 }` (strace).
        var e = LbElement.SlotOf(new VipPort(IPAddress.Parse("198.19.2.1"), VipPort.Tcp, 80), 3, IPAddress.Parse("198.18.9.9"));
        Span<byte> key = stackalloc byte[16];
        Span<byte> data = stackalloc byte[8];
        Assert.Equal(16, e.WriteKey(key));
        Assert.Equal(Convert.FromHexString("c6130201060000000050000003000000"), key.ToArray());
        Assert.Equal(8, e.WriteData(data));
        Assert.Equal(Convert.FromHexString("c612090900500000"), data.ToArray());
        Assert.Equal(12, LbElement.TierOf(e.Port, "r2").WriteKey(key));
        Assert.Equal(4, LbElement.Vip(e.Port.Vip).WriteKey(key));
    }

    [Fact]
    public void A_delta_replaces_changed_slots_and_leaves_the_rest()
    {
        var port = new VipPort(IPAddress.Parse("198.19.2.1"), VipPort.Tcp, 80);
        var a = IPAddress.Parse("198.19.3.1");
        var b = IPAddress.Parse("198.19.3.2");
        var c = IPAddress.Parse("198.19.3.3");
        var before = new[] { LbElement.Vip(port.Vip), LbElement.TierOf(port, "r2"), LbElement.SlotOf(port, 0, a), LbElement.SlotOf(port, 1, b) };
        var after = new[] { LbElement.Vip(port.Vip), LbElement.TierOf(port, "r2"), LbElement.SlotOf(port, 0, a), LbElement.SlotOf(port, 1, c) };
        var delta = ElementDelta.Between(before, after);
        Assert.Equal([LbElement.SlotOf(port, 1, b)], delta.Deletes.AsEnumerable());
        Assert.Equal([LbElement.SlotOf(port, 1, c)], delta.Adds.AsEnumerable());
        Assert.True(ElementDelta.Between(after, after).IsEmpty);
    }
}
