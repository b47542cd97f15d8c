using System.Text.Json;

namespace Discovery.Tests.Agent;

/// <summary>What `ip -j` shows inside a namespace, for assertions.</summary>
public static class KernelView
{
    public static List<JsonElement> Links(string ns) =>
        Sh.Json("ip", "-n", ns, "-j", "-d", "link", "show").EnumerateArray().ToList();

    public static JsonElement? Link(string ns, string name) =>
        Links(ns).Cast<JsonElement?>().FirstOrDefault(l => l!.Value.GetProperty("ifname").GetString() == name);

    public static List<string> LinkNames(string ns) => Links(ns).Select(l => l.GetProperty("ifname").GetString()!).Order().ToList();

    public static List<string> Addresses(string ns, string ifname) =>
        Sh.Json("ip", "-4", "-n", ns, "-j", "addr", "show", "dev", ifname).EnumerateArray()
            .SelectMany(l => l.GetProperty("addr_info").EnumerateArray())
            .Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()}").ToList();

    /// <summary>
    /// A fingerprint of a namespace's links (name, index, MAC, MTU, master), IPv4 addresses and nft tables, to prove an
    /// operation changed nothing. Link state and IPv6 duplicate-address detection change by themselves, so they are left out.
    /// </summary>
    public static string Fingerprint(string ns) =>
        string.Join(";", Links(ns).Select(l => string.Join(",", l.GetProperty("ifname").GetString(), l.GetProperty("ifindex").GetInt32(),
            l.TryGetProperty("address", out var mac) ? mac.GetString() : "", l.GetProperty("mtu").GetInt32(),
            l.TryGetProperty("master", out var m) ? m.GetString() : "")))
        + "|" + Sh.Run("ip", "-4", "-n", ns, "-o", "addr", "show")
        + "|" + Sh.Run("ip", "netns", "exec", ns, "nft", "list", "tables");
}
