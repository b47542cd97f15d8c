using System.Globalization;
using System.Net;
using Discovery.Gossip.Membership;

namespace Discovery.Gossip.Serf;

/// <summary>The serf tags a Discovery agent announces, so peers (and `serf members`) can tell what it is.</summary>
public static class AgentTags
{
    /// <summary>serf's conventional role tag.</summary>
    public const string Role = "role";
    /// <summary>Underlay address of the agent's VXLAN tunnel endpoint.</summary>
    public const string Vtep = "vtep";
    /// <summary>Discovery's own protocol version (catalog messages and state), independent of memberlist's.</summary>
    public const string ProtocolVersion = "dv";

    public const string DiscoveryRole = "discovery";
    /// <summary>2: catalog entry format 2 (raw hex keys, tombstone deletion times). Agents of version 1 read only format 1.</summary>
    public const int CurrentProtocolVersion = 2;

    public static Dictionary<string, string> For(IPAddress vtep, int protocolVersion = CurrentProtocolVersion) => new(StringComparer.Ordinal)
    {
        [Role] = DiscoveryRole,
        [Vtep] = vtep.ToString(),
        [ProtocolVersion] = protocolVersion.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>True for members that are Discovery agents (as opposed to plain serf agents in the same mesh).</summary>
    public static bool IsDiscoveryAgent(Member member) => member.Tags.TryGetValue(Role, out var r) && r == DiscoveryRole;

    /// <summary>The protocol version an agent announces; 1 if it announces none or garbage (the oldest we speak).</summary>
    public static int ProtocolVersionOf(Member member) =>
        member.Tags.TryGetValue(ProtocolVersion, out var v) && int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : 1;

    /// <summary>True for a Discovery agent of the previous release: it reads only entry format 1 and endpoint records
    /// 1.x, so while one is a member everything is written in those formats (one rule for the gossip envelope and the
    /// records).</summary>
    public static bool ReadsOnlyPreviousFormats(Member member) =>
        IsDiscoveryAgent(member) && ProtocolVersionOf(member) < CurrentProtocolVersion;

    public static IPAddress? VtepOf(Member member) =>
        member.Tags.TryGetValue(Vtep, out var v) && IPAddress.TryParse(v, out var ip) ? ip : null;
}
