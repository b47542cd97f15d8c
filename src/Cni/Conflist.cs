using System.Text;
using System.Text.Json;

namespace Discovery.Cni;

/// <summary>
/// The conflist podman reads for a discovery network (/etc/cni/net.d/NET.conflist). Pure. The capabilities must be
/// declared or libcni drops --network-alias, -p and --ip before the plugin sees them.
/// </summary>
public static class Conflist
{
    public const string PluginType = "discovery";

    /// <param name="agentSocket">Written as the plugin's "agentSocket" when not the agent's default.</param>
    public static string Render(string network, string publishMode, string? agentSocket)
    {
        CheckNetwork(network);
        if (publishMode is not (NetworkConfig.HostMode or NetworkConfig.IngressMode))
            throw new ArgumentException($"publish mode '{Text.Printable(publishMode)}' must be host or ingress");
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", CniPlugin.Version);
            w.WriteString("name", network);
            w.WriteStartArray("plugins");
            w.WriteStartObject();
            w.WriteString("type", PluginType);
            w.WriteString("publishMode", publishMode);
            if (agentSocket is not null) w.WriteString("agentSocket", agentSocket);
            w.WriteStartObject("capabilities");
            w.WriteBoolean("aliases", true);
            w.WriteBoolean("portMappings", true);
            w.WriteBoolean("ips", true);
            w.WriteEndObject();
            w.WriteEndObject();
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>The discovery network name rule (a DNS label); it also keeps the file name inside the directory.</summary>
    public static void CheckNetwork(string network)
    {
        if (network.Length is 0 or > 63 || network[0] == '-' || network[^1] == '-'
            || !network.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
            throw new ArgumentException($"network name '{Text.Printable(network)}' must be 1-63 lower-case letters, digits and '-'");
    }

    /// <summary>True if <paramref name="json"/> is a conflist whose plugins include a discovery one (uninstall
    /// removes only those).</summary>
    public static bool IsOurs(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object
                && doc.RootElement.TryGetProperty("plugins", out var plugins) && plugins.ValueKind == JsonValueKind.Array
                && plugins.EnumerateArray().Any(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("type", out var t)
                    && t.ValueKind == JsonValueKind.String && t.GetString() == PluginType);
        }
        catch (JsonException) { return false; }
    }
}
