using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Discovery.Cni;

/// <summary>One `-p` of the container: runtimeConfig.portMappings[i] (podman sends one entry per port of a range).</summary>
/// <param name="HostIp">null: every host address.</param>
public sealed record PortMapping(int HostPort, int ContainerPort, string Protocol, string? HostIp);

/// <summary>
/// The network configuration a runtime writes on stdin, as far as this plugin reads it, checked. Pure.
/// Broken JSON is code 6 (decoding failure); JSON of the wrong shape or with bad values is code 7 (invalid network
/// configuration); a cniVersion this plugin does not speak is code 1. Unknown keys are allowed (the spec lets a
/// conflist carry any plugin keys; podman adds some).
/// </summary>
/// <param name="Name">The conflist's name: what podman calls the network (runtimeConfig.aliases is keyed by it).</param>
/// <param name="AgentSocket">Plugin option "agentSocket": the agent's API socket (default: the agent's default).</param>
/// <param name="PublishMode">Plugin option "publishMode": host (default) or ingress, for the container's port mappings.</param>
/// <param name="Aliases">runtimeConfig.aliases[Name]: the --network-alias values and podman's short id.</param>
/// <param name="Ips">runtimeConfig.ips (podman sends it for two or more --ip), without prefix lengths.</param>
/// <param name="PrevSandbox">prevResult's sandbox path of the first sandbox interface (DEL's hint when CNI_NETNS is empty).</param>
/// <param name="PrevAddress">prevResult's first address as "IP/PREFIX" (CHECK compares it).</param>
/// <param name="Network">Plugin option "network": the discovery network the containers join (default: <paramref name="Name"/>).
/// A service conflist names a network other than itself, so several conflists can lead to one network.</param>
/// <param name="Service">Plugin option "service": every container of this conflist is a task of that service (null: none;
/// the container's -p ports then make a service of its own).</param>
public sealed record NetworkConfig(
    string CniVersion, string Name, string? AgentSocket, string PublishMode,
    IReadOnlyList<string> Aliases, IReadOnlyList<PortMapping> PortMappings, IReadOnlyList<string> Ips,
    string? PrevSandbox, string? PrevAddress, string Network, string? Service = null)
{
    /// <summary>The CNI versions whose result format this plugin writes (1.1 changed none of ADD's result).</summary>
    public static readonly string[] SupportedVersions = ["1.0.0", "1.1.0"];

    public const string HostMode = "host";
    public const string IngressMode = "ingress";

    /// <summary>A network configuration is a few hundred bytes; this bounds what a caller can make us parse.</summary>
    public const int MaxBytes = 1 << 20;

    private const int MaxDepth = 32;
    private const int MaxAliases = 64;       // as the catalog's endpoint record (RecordRules)
    private const int MaxPortMappings = 64;  // as a service's ports (RecordRules.MaxServicePorts)
    private const int MaxIps = 16;
    private const int MaxSocketPathChars = 107; // sun_path is 108 bytes with the terminator

    public static NetworkConfig Parse(ReadOnlySpan<byte> json)
    {
        if (json.Length == 0) throw Invalid("stdin is empty: the network configuration is required");
        if (json.Length > MaxBytes) throw Invalid($"the network configuration is larger than {MaxBytes} bytes");
        JsonDocument doc;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxDepth });
            doc = JsonDocument.ParseValue(ref reader);
            if (reader.BytesConsumed != json.Length && !TrailingWhitespace(json[(int)reader.BytesConsumed..]))
                throw new CniException(CniCode.DecodingFailure, "the network configuration has data after its JSON value");
        }
        catch (JsonException ex)
        {
            throw new CniException(CniCode.DecodingFailure, $"the network configuration is not valid JSON: {Text.Printable(ex.Message)}");
        }
        using (doc) return From(doc.RootElement);
    }

    private static NetworkConfig From(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Invalid("the network configuration must be a JSON object");
        var version = String(root, "cniVersion") ?? throw Invalid("cniVersion is missing");
        if (!SupportedVersions.Contains(version))
            throw new CniException(CniCode.IncompatibleVersion, $"cniVersion '{Text.Printable(version)}' is not supported (supported: {string.Join(", ", SupportedVersions)})");
        var name = String(root, "name") ?? throw Invalid("name (the network) is missing");
        if (!IsLabel(name))
            throw Invalid($"name '{Text.Printable(name)}' must be a discovery network name: 1-63 lower-case letters, digits and '-'");
        var network = String(root, "network") ?? name;
        if (!IsLabel(network))
            throw Invalid($"network '{Text.Printable(network)}' must be a discovery network name: 1-63 lower-case letters, digits and '-'");
        var service = String(root, "service");
        if (service is not null && !IsLabel(service))
            throw Invalid($"service '{Text.Printable(service)}' must be a discovery service name: 1-63 lower-case letters, digits and '-'");
        var socket = String(root, "agentSocket");
        if (socket is not null && (socket.Length is 0 or > MaxSocketPathChars || socket[0] != '/' || socket.Any(char.IsControl)))
            throw Invalid($"agentSocket '{Text.Printable(socket)}' must be an absolute path of at most {MaxSocketPathChars} characters");
        var mode = String(root, "publishMode") ?? HostMode;
        if (mode is not (HostMode or IngressMode))
            throw Invalid($"publishMode '{Text.Printable(mode)}' must be host or ingress");

        IReadOnlyList<string> aliases = [];
        IReadOnlyList<PortMapping> ports = [];
        IReadOnlyList<string> ips = [];
        if (Member(root, "runtimeConfig", JsonValueKind.Object) is { } rc)
        {
            if (Member(rc, "aliases", JsonValueKind.Object) is { } byNetwork && Member(byNetwork, name, JsonValueKind.Array) is { } list)
                aliases = Strings(list, $"runtimeConfig.aliases.{name}", MaxAliases);
            if (Member(rc, "portMappings", JsonValueKind.Array) is { } maps) ports = ReadPortMappings(maps);
            if (Member(rc, "ips", JsonValueKind.Array) is { } ipList) ips = ReadIps(ipList);
        }

        string? prevSandbox = null, prevAddress = null;
        if (Member(root, "prevResult", JsonValueKind.Object) is { } prev)
        {
            if (Member(prev, "interfaces", JsonValueKind.Array) is { } ifs)
                foreach (var i in ifs.EnumerateArray())
                    if (i.ValueKind == JsonValueKind.Object && String(i, "sandbox") is { Length: > 0 } sb) { prevSandbox = sb; break; }
            if (Member(prev, "ips", JsonValueKind.Array) is { } pips && pips.GetArrayLength() > 0 && pips[0].ValueKind == JsonValueKind.Object)
                prevAddress = String(pips[0], "address");
        }
        return new NetworkConfig(version, name, socket, mode, aliases, ports, ips, prevSandbox, prevAddress, network, service);
    }

    private static IReadOnlyList<PortMapping> ReadPortMappings(JsonElement maps)
    {
        if (maps.GetArrayLength() > MaxPortMappings) throw Invalid($"runtimeConfig.portMappings has more than {MaxPortMappings} entries");
        var result = new List<PortMapping>();
        foreach (var m in maps.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object) throw Invalid("runtimeConfig.portMappings entries must be objects");
            var host = Port(m, "hostPort");
            var container = Port(m, "containerPort");
            var protocol = (String(m, "protocol") ?? "tcp").ToLowerInvariant();
            if (protocol is not ("tcp" or "udp"))
                throw Invalid($"port mapping {host}:{container}: protocol '{Text.Printable(protocol)}' is not supported (tcp or udp)");
            var hostIp = String(m, "hostIP");
            if (hostIp is "" or "0.0.0.0") hostIp = null;
            if (hostIp is not null && (!IPAddress.TryParse(hostIp, out var a) || a.AddressFamily != AddressFamily.InterNetwork || a.ToString() != hostIp))
                throw Invalid($"port mapping {host}:{container}: hostIP '{Text.Printable(hostIp)}' is not an IPv4 address (only IPv4 is supported)");
            result.Add(new PortMapping(host, container, protocol, hostIp));
        }
        return result;
    }

    private static IReadOnlyList<string> ReadIps(JsonElement list)
    {
        var result = new List<string>();
        foreach (var text in Strings(list, "runtimeConfig.ips", MaxIps))
        {
            // An entry may carry a prefix length (the spec's "ips" capability); the network decides the prefix.
            var slash = text.IndexOf('/');
            var address = slash >= 0 ? text[..slash] : text;
            if (!IPAddress.TryParse(address, out var ip) || ip.AddressFamily != AddressFamily.InterNetwork || ip.ToString() != address)
                throw Invalid($"runtimeConfig.ips entry '{Text.Printable(text)}' is not an IPv4 address (only IPv4 is supported)");
            result.Add(address);
        }
        return result;
    }

    private static int Port(JsonElement m, string field)
    {
        if (!m.TryGetProperty(field, out var v)) throw Invalid($"runtimeConfig.portMappings: {field} is missing");
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n) || n is < 1 or > 65535)
            throw Invalid($"runtimeConfig.portMappings: {field} must be a number in 1..65535");
        return n;
    }

    private static List<string> Strings(JsonElement list, string what, int max)
    {
        if (list.GetArrayLength() > max) throw Invalid($"{what} has more than {max} entries");
        var result = new List<string>();
        foreach (var e in list.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String) throw Invalid($"{what} must hold strings only");
            result.Add(e.GetString()!);
        }
        return result;
    }

    // A member of the expected kind, null when absent or JSON null; another kind is a shape error.
    private static JsonElement? Member(JsonElement obj, string name, JsonValueKind kind)
    {
        if (!obj.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != kind) throw Invalid($"{Text.Printable(name)} must be a JSON {kind.ToString().ToLowerInvariant()}");
        return v;
    }

    private static string? String(JsonElement obj, string name) => Member(obj, name, JsonValueKind.String)?.GetString();

    /// <summary>The discovery name rule for networks and services: a DNS label in lower case.</summary>
    public static bool IsLabel(string name) =>
        name.Length is > 0 and <= 63 && name[0] != '-' && name[^1] != '-'
        && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-');

    private static bool TrailingWhitespace(ReadOnlySpan<byte> rest)
    {
        foreach (var b in rest) if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')) return false;
        return true;
    }

    private static CniException Invalid(string message) => new(CniCode.InvalidNetworkConfig, message);
}
