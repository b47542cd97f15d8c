namespace Discovery.Cni;

/// <summary>
/// The CNI_* environment of one call, checked. Pure: built from a lookup so tests need no process environment.
/// Every problem is a <see cref="CniException"/> with code 4 (invalid environment variables).
/// </summary>
/// <param name="ContainerId">CNI_CONTAINERID; empty for VERSION, STATUS and GC.</param>
/// <param name="Netns">CNI_NETNS: a path; empty where the spec allows it (DEL, VERSION, STATUS, GC).</param>
/// <param name="Ifname">CNI_IFNAME; empty for VERSION, STATUS and GC.</param>
public sealed record CniEnvironment(CniCommandKind Command, string ContainerId, string Netns, string Ifname, CniArgs Args)
{
    public const string CommandVariable = "CNI_COMMAND";

    // Bounds on text from the runtime: enough for every real value, small enough to echo in one line.
    private const int MaxIdChars = 128;
    private const int MaxPathChars = 4096;
    private const int MaxIfnameChars = 15; // IFNAMSIZ 16 with the terminator

    /// <summary>The first 12 characters of the container id, lower case: podman's short id (it adds it to aliases).</summary>
    public string ShortId => ContainerId.Length <= 12 ? ContainerId.ToLowerInvariant() : ContainerId[..12].ToLowerInvariant();

    public static CniCommandKind ParseCommand(string? text) => text switch
    {
        "ADD" => CniCommandKind.Add,
        "DEL" => CniCommandKind.Del,
        "CHECK" => CniCommandKind.Check,
        "VERSION" => CniCommandKind.Version,
        "GC" => CniCommandKind.Gc,
        "STATUS" => CniCommandKind.Status,
        _ => throw new CniException(CniCode.InvalidEnvironment, $"CNI_COMMAND '{Text.Printable(text)}' is not ADD, DEL, CHECK, VERSION, GC or STATUS"),
    };

    public static CniEnvironment Parse(Func<string, string?> env)
    {
        var command = ParseCommand(env(CommandVariable));
        var perContainer = command is CniCommandKind.Add or CniCommandKind.Del or CniCommandKind.Check;
        var id = env("CNI_CONTAINERID") ?? "";
        var netns = env("CNI_NETNS") ?? "";
        var ifname = env("CNI_IFNAME") ?? "";
        if (!perContainer) return new CniEnvironment(command, "", "", "", CniArgs.Empty);

        // The spec: alphanumerics plus '_', '.' and '-', starting with an alphanumeric.
        if (id.Length is 0 or > MaxIdChars || !char.IsAsciiLetterOrDigit(id[0]) || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
            throw new CniException(CniCode.InvalidEnvironment, $"CNI_CONTAINERID '{Text.Printable(id)}' must be 1-{MaxIdChars} letters, digits, '_', '.' or '-', starting with a letter or digit");
        if (ifname.Length is 0 or > MaxIfnameChars || ifname is "." or ".." || !ifname.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-'))
            throw new CniException(CniCode.InvalidEnvironment, $"CNI_IFNAME '{Text.Printable(ifname)}' must be 1-{MaxIfnameChars} letters, digits, '_', '.' or '-'");
        // DEL may come without a namespace (it is already gone); ADD and CHECK need one.
        if (netns.Length == 0 && command != CniCommandKind.Del)
            throw new CniException(CniCode.InvalidEnvironment, "CNI_NETNS is required");
        if (netns.Length > 0 && (netns.Length > MaxPathChars || netns[0] != '/' || netns.Any(char.IsControl) || netns.Split('/').Contains("..")))
            throw new CniException(CniCode.InvalidEnvironment, $"CNI_NETNS '{Text.Printable(netns)}' must be an absolute path without '..'");
        return new CniEnvironment(command, id, netns, ifname, CniArgs.Parse(env("CNI_ARGS")));
    }
}
