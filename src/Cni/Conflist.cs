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

    /// <param name="network">The conflist's name (podman's --network), and the discovery network unless
    /// <paramref name="target"/> names another.</param>
    /// <param name="agentSocket">Written as the plugin's "agentSocket" when not the agent's default.</param>
    /// <param name="target">The discovery network the containers join ("network"); null: <paramref name="network"/>.</param>
    /// <param name="service">A service conflist: its containers are tasks of this service ("service"); the service
    /// publishes ports, so there is no publishMode.</param>
    public static string Render(string network, string publishMode, string? agentSocket, string? target = null, string? service = null)
    {
        CheckNetwork(network);
        if (target is not null) CheckName("network", target);
        if (service is not null) CheckName("service", service);
        if (publishMode is not (NetworkConfig.HostMode or NetworkConfig.IngressMode))
            throw new ArgumentException($"publish mode '{Text.Printable(publishMode)}' must be host or ingress");
        if (service is not null && publishMode != NetworkConfig.HostMode)
            throw new ArgumentException($"a publish mode does not apply to a service conflist: service {service} publishes its ports (discovery service create|update {service} --publish-mode ...)");
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", CniPlugin.Version);
            w.WriteString("name", network);
            w.WriteStartArray("plugins");
            w.WriteStartObject();
            w.WriteString("type", PluginType);
            if (target is not null) w.WriteString("network", target);
            if (service is not null) w.WriteString("service", service);
            else w.WriteString("publishMode", publishMode);
            if (agentSocket is not null) w.WriteString("agentSocket", agentSocket);
            // portMappings also on a service conflist: the plugin must see -p to refuse it (undeclared, libcni drops it silently).
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
    public static void CheckNetwork(string network) => CheckName("network", network);

    /// <summary>Network and service names share the rule (DNS labels: NAME and tasks.NAME resolve).</summary>
    public static void CheckName(string what, string name)
    {
        if (!NetworkConfig.IsLabel(name))
            throw new ArgumentException($"{what} name '{Text.Printable(name)}' must be 1-63 lower-case letters, digits and '-'");
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
