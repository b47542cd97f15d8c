namespace Discovery.Overlay;

/// <summary>The names of everything the overlay creates in the kernel. Reconciliation finds its own objects by these names.</summary>
public sealed class KernelNames(OverlayOptions options)
{
    /// <summary>Prefix of this node's overlay namespaces; everything after it is the network name.</summary>
    public string NetworkNamespacePrefix { get; } = $"{options.NetnsPrefix}{options.Node}-";

    public string NetworkNamespace(string network) => NetworkNamespacePrefix + network;

    public const string Bridge = "br0";
    public const string Vxlan = "vxlan0";

    /// <summary>Host end of an endpoint's veth, inside the network namespace: "ve" + 11 id chars (15-char limit).</summary>
    public static string HostVeth(string endpointId) => "ve" + endpointId[..11];

    public static bool IsHostVeth(string link) => link.StartsWith("ve", StringComparison.Ordinal) && link.Length == 13;

    /// <summary>The host namespace's end of a host leg (see <see cref="OverlayService.EnsureHostLegAsync"/>): "dh" + 11 id
    /// chars, so it is unique across networks in the one host namespace.</summary>
    public static string HostLegInterface(string endpointId) => "dh" + endpointId[..11];

    /// <summary>Name the container end has between creation and its rename to the requested ifname.</summary>
    public static string TemporaryPeer(string endpointId) => "vc" + endpointId[..11];

    /// <summary>The container end of a detached endpoint, renamed (and down) until its veth is deleted.</summary>
    public static string RetiredPeer(string endpointId) => "vr" + endpointId[..11];

    // Tags this agent's temporary devices, so agents sharing a host namespace never take each other's for strays.
    private readonly string _vxlanPrefix = "dv" + Convert.ToHexString(
        System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(options.NetnsPrefix + options.Node)))[..4].ToLowerInvariant();

    /// <summary>The VXLAN device lives under this name in the host namespace only between creation and its move
    /// ("dv" + 4-hex agent tag + VNI: at most 14 characters).</summary>
    public string TemporaryVxlan(int vni) => _vxlanPrefix + vni.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public bool IsTemporaryVxlan(string link) => link.StartsWith(_vxlanPrefix, StringComparison.Ordinal);
}
