using System.Text.RegularExpressions;

namespace Discovery.Overlay;

/// <summary>Validation of operator-given names. Names end up in DNS labels and kernel object names.</summary>
public static partial class Naming
{
    // A DNS label, lower case: network names appear in `name.<network>` and in /run/netns names.
    [GeneratedRegex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    private static partial Regex NetworkName();

    // Container names and aliases as Docker allows them, minus characters that break DNS lookups.
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]
    private static partial Regex EndpointName();

    // Linux IFNAMSIZ is 16 including the terminator; no '/', ':' or whitespace.
    [GeneratedRegex("^[A-Za-z0-9_.-]{1,15}$")]
    private static partial Regex InterfaceName();

    public static void CheckNetwork(string name)
    {
        if (!NetworkName().IsMatch(name))
            throw new OverlayException(OverlayErrorKind.Invalid, $"invalid network name '{name}': use 1-63 lower-case letters, digits and '-' (a DNS label)");
    }

    /// <summary>Service names follow the network name rule: they are DNS labels (NAME, tasks.NAME) and claim keys.</summary>
    public static void CheckService(string name)
    {
        if (!NetworkName().IsMatch(name))
            throw new OverlayException(OverlayErrorKind.Invalid, $"invalid service name '{name}': use 1-63 lower-case letters, digits and '-' (a DNS label)");
    }

    public static void CheckEndpoint(string what, string name)
    {
        if (!EndpointName().IsMatch(name))
            throw new OverlayException(OverlayErrorKind.Invalid, $"invalid {what} '{name}': use 1-63 letters, digits, '_', '.' and '-', starting with a letter or digit");
    }

    public static void CheckInterface(string name)
    {
        if (!InterfaceName().IsMatch(name))
            throw new OverlayException(OverlayErrorKind.Invalid, $"invalid interface name '{name}': 1-15 letters, digits, '_', '.' or '-'");
    }
}
