using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Discovery.Daemon.Agent;
using Microsoft.Extensions.Options;

namespace Discovery.Daemon.Hosting;

/// <summary>Checks <see cref="AgentOptions"/>: one operator-readable line per bad value (printed as `discovery: …`).</summary>
public sealed partial class AgentOptionsValidator : IValidateOptions<AgentOptions>
{
    public ValidateOptionsResult Validate(string? name, AgentOptions o)
    {
        var bad = Check(o);
        return bad.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(bad);
    }

    public static List<string> Check(AgentOptions o)
    {
        var bad = new List<string>();
        void Try(Action check)
        {
            try { check(); }
            catch (ConfigException ex) { bad.Add(ex.Message); }
        }

        if (!ValidNetnsPrefix().IsMatch(o.NetnsPrefix))
            bad.Add($"netns prefix '{o.NetnsPrefix}' must be at most 64 of the characters A-Z a-z 0-9 . _ -");
        if (!ValidDomain().IsMatch(o.ClusterDomain) || o.ClusterDomain.TrimEnd('.').Length > 253)
            bad.Add($"cluster domain '{o.ClusterDomain}' is not a DNS name (labels of 1 to 63 letters, digits, '-' or '_', separated by dots)");
        if (string.IsNullOrWhiteSpace(o.Node) || o.Node.Contains('/') || o.Node.Any(char.IsWhiteSpace))
            bad.Add($"node name '{o.Node}' must be non-empty, without '/' or spaces");
        if (!Enum.TryParse<Microsoft.Extensions.Logging.LogLevel>(o.LogLevel, ignoreCase: true, out _) || int.TryParse(o.LogLevel, out _))
            bad.Add($"log level '{o.LogLevel}' is not one of Trace, Debug, Information, Warning, Error, Critical, None");
        foreach (var (key, v) in new[] { ("claimSettleSeconds", o.ClaimSettleSeconds), ("dnsTtlSeconds", o.DnsTtlSeconds),
                     ("dnsForwardTimeoutSeconds", o.DnsForwardTimeoutSeconds), ("reapWindowSeconds", o.ReapWindowSeconds),
                     ("ownEndpointCheckSeconds", o.OwnEndpointCheckSeconds), ("blockReleaseGraceSeconds", o.BlockReleaseGraceSeconds) })
            if (!double.IsFinite(v)) bad.Add($"{key} must be a finite number, not {v}");
        if (!IPNetwork.TryParse(o.DefaultPool, out var pool) || pool.BaseAddress.AddressFamily != AddressFamily.InterNetwork || pool.PrefixLength > 24)
            bad.Add($"default pool '{o.DefaultPool}' must be an IPv4 CIDR of /24 or larger");
        if (!IPEndPoint.TryParse(o.Metrics, out var m) || m.Port == 0) bad.Add($"metrics address '{o.Metrics}' is not ADDR:PORT");
        if (o.Advertise is not null && !IPAddress.TryParse(o.Advertise, out _)) bad.Add($"advertise address '{o.Advertise}' is not an IP address");
        if (o.UnderlayMtu is < 1280 or > 65535) bad.Add($"underlay MTU {o.UnderlayMtu} is out of range 1280..65535");
        if (o.DnsTtlSeconds is < 0 or > 86400) bad.Add($"DNS TTL {o.DnsTtlSeconds}s is out of range 0..86400");
        if (o.DnsForwardTimeoutSeconds is <= 0 or > 60) bad.Add($"DNS forward timeout {o.DnsForwardTimeoutSeconds}s is out of range (0, 60]");
        if (o.DnsMaxInFlight < 1) bad.Add("DNS in-flight limit must be at least 1");
        if (o.DnsServeThreads is < 0 or > 256) bad.Add($"DNS serving threads must be between 0 (one per core) and 256, not {o.DnsServeThreads}");
        if (o.DnsCacheMaxEntries < 0) bad.Add("DNS cache size must not be negative");
        Try(() => o.ParseUpstreams());
        Try(() => o.ParseBind());
        if (o.ReapWindowSeconds is < 1 or > 30 * 86400) bad.Add($"reap window {o.ReapWindowSeconds}s is out of range 1..2592000");
        if (o.Encrypt is not null)
        {
            try
            {
                var key = Convert.FromBase64String(o.Encrypt);
                if (key.Length is not (16 or 24 or 32)) bad.Add($"encrypt key must be 16, 24 or 32 bytes, not {key.Length}");
            }
            catch (FormatException) { bad.Add("encrypt key is not base64"); }
        }
        if (o.OwnEndpointCheckSeconds is < 0.1 or > 86400) bad.Add($"own endpoint check interval {o.OwnEndpointCheckSeconds}s is out of range 0.1..86400");
        if (o.ClaimSettleSeconds is < 0 or > 600) bad.Add($"claim settle time {o.ClaimSettleSeconds}s is out of range 0..600");
        if (o.BlockReleaseGraceSeconds is < 0 or > 30 * 86400) bad.Add($"block release grace {o.BlockReleaseGraceSeconds}s is out of range 0..2592000");
        return bad;
    }

    // A namespace name part: it becomes a file name under /run/netns and a prefix of link-free names.
    [GeneratedRegex("^[A-Za-z0-9._-]{0,64}$")]
    private static partial Regex ValidNetnsPrefix();

    // Empty (no cluster domain) or dot-separated labels, with or without the root dot.
    [GeneratedRegex("^(\\.?|([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)(\\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\\.?)$")]
    private static partial Regex ValidDomain();
}
