using System.Net;
using System.Net.Sockets;

namespace Discovery.Cni;

/// <summary>
/// CNI_ARGS, "K=V;K=V" (SPEC.md, and libcni's convention): what podman passes there is the container name
/// (K8S_POD_NAME), one static IP (IP=) and the MAC (MAC=, not used: the agent derives the MAC from the address). Keys
/// this plugin does not know are an error unless IgnoreUnknown is set, as in the reference plugins.
/// </summary>
public sealed record CniArgs(string? PodName, IPAddress? Ip)
{
    public static readonly CniArgs Empty = new(null, null);

    private const int MaxChars = 4096;

    // Keys with a meaning elsewhere that are accepted and ignored here (libcni's K8S args, podman's MAC).
    private static readonly string[] Ignored = ["MAC", "K8S_POD_NAMESPACE", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"];

    public static CniArgs Parse(string? text)
    {
        if (string.IsNullOrEmpty(text)) return Empty;
        if (text.Length > MaxChars) throw Bad($"CNI_ARGS is longer than {MaxChars} characters");
        var pairs = new List<(string Key, string Value)>();
        foreach (var part in text.Split(';'))
        {
            if (part.Length == 0) continue;
            var eq = part.IndexOf('=');
            if (eq <= 0) throw Bad($"CNI_ARGS entry '{Text.Printable(part)}' is not KEY=VALUE");
            pairs.Add((part[..eq], part[(eq + 1)..]));
        }
        var ignoreUnknown = pairs.Any(p => p.Key == "IgnoreUnknown" && p.Value is "1" or "true" or "True");
        string? name = null;
        IPAddress? ip = null;
        foreach (var (key, value) in pairs)
        {
            switch (key)
            {
                case "IgnoreUnknown": break;
                case "K8S_POD_NAME":
                    name = value.Length > 0 ? value : null;
                    break;
                case "IP":
                    if (!IPAddress.TryParse(value, out var parsed) || parsed.AddressFamily != AddressFamily.InterNetwork || parsed.ToString() != value)
                        throw Bad($"CNI_ARGS IP '{Text.Printable(value)}' is not an IPv4 address (only IPv4 is supported)");
                    ip = parsed;
                    break;
                default:
                    if (!ignoreUnknown && !Ignored.Contains(key))
                        throw Bad($"CNI_ARGS has unknown key '{Text.Printable(key)}' (set IgnoreUnknown=1 to allow it)");
                    break;
            }
        }
        return new CniArgs(name, ip);
    }

    private static CniException Bad(string message) => new(CniCode.InvalidEnvironment, message);
}
