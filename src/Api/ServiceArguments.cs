using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Discovery.Api;

/// <summary>A service argument that cannot be read: one line for the operator.</summary>
public sealed class ServiceArgumentException(string message) : Exception(message);

/// <summary>
/// The service arguments in their text forms, read the same way by the CLI (before it calls the agent) and by the agent
/// (which trusts no client): port specs, mode, publish mode, balancing and affinity. Pure; every failure is a
/// <see cref="ServiceArgumentException"/> with one clear line.
/// </summary>
public static class ServiceArguments
{
    public const string Tcp = "tcp";
    public const string Udp = "udp";

    /// <summary>client-ip without a timeout: kube-proxy's default (sessionAffinityConfig.clientIP.timeoutSeconds).</summary>
    public const int DefaultAffinitySeconds = 10_800;
    public const int MaxAffinitySeconds = 86_400;

    public static readonly string[] Modes = ["vip", "dnsrr"];
    public static readonly string[] PublishModes = ["ingress", "host", "local"];
    public static readonly string[] Balances = ["random", "consistent"];

    private const int MaxSpecChars = 200;

    /// <summary>`--publish [NAME=][IP:]PUBLISHED:TARGET[/tcp|udp]`.</summary>
    public static ServicePortRequest ParsePublish(string? spec)
    {
        var (name, body, protocol) = Split(spec, "--publish", "[NAME=][IP:]PUBLISHED:TARGET[/tcp|udp]");
        var parts = body.Split(':');
        if (parts.Length is not (2 or 3))
            throw new ServiceArgumentException($"--publish '{spec}' must be [NAME=][IP:]PUBLISHED:TARGET[/tcp|udp] (an IPv6 host address is not supported)");
        string? hostIp = parts.Length == 3 ? HostIp(parts[0], spec!) : null;
        int published = Number(parts[^2], "published port", spec!);
        int target = Number(parts[^1], "target port", spec!);
        return new ServicePortRequest(name ?? target.ToString(CultureInfo.InvariantCulture), protocol, target, published, hostIp);
    }

    /// <summary>`--port [NAME=]TARGET[/tcp|udp]`: a port of the tasks that is not published on hosts.</summary>
    public static ServicePortRequest ParsePort(string? spec)
    {
        var (name, body, protocol) = Split(spec, "--port", "[NAME=]TARGET[/tcp|udp]");
        if (body.Contains(':'))
            throw new ServiceArgumentException($"--port '{spec}' must be [NAME=]TARGET[/tcp|udp]; publish a port with --publish");
        int target = Number(body, "target port", spec!);
        return new ServicePortRequest(name ?? target.ToString(CultureInfo.InvariantCulture), protocol, target);
    }

    /// <summary>Affinity text to seconds: "none" is 0, "client-ip" the default timeout, "client-ip:SECONDS" 1..86400.</summary>
    public static int AffinitySeconds(string? text)
    {
        if (text is null or "none") return 0;
        if (text == "client-ip") return DefaultAffinitySeconds;
        const string prefix = "client-ip:";
        if (text.StartsWith(prefix, StringComparison.Ordinal)
            && int.TryParse(text.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s is >= 1 and <= MaxAffinitySeconds
            && text.Length - prefix.Length <= 5)
            return s;
        throw new ServiceArgumentException($"affinity '{Printable(text)}' must be none, client-ip or client-ip:SECONDS (1..{MaxAffinitySeconds})");
    }

    /// <summary>Seconds back to the affinity text the API shows.</summary>
    public static string AffinityText(int seconds) => seconds == 0 ? "none" : $"client-ip:{seconds.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Checks <paramref name="value"/> is one of <paramref name="allowed"/>; returns its index.</summary>
    public static int OneOf(string? value, string what, string[] allowed)
    {
        var i = value is null ? -1 : Array.IndexOf(allowed, value);
        return i >= 0 ? i : throw new ServiceArgumentException($"{what} '{Printable(value)}' must be {string.Join(", ", allowed[..^1])} or {allowed[^1]}");
    }

    // NAME= prefix, /proto suffix, and what is between.
    private static (string? Name, string Body, string Protocol) Split(string? spec, string flag, string shape)
    {
        if (string.IsNullOrEmpty(spec) || spec.Length > MaxSpecChars)
            throw new ServiceArgumentException($"{flag} '{Printable(spec)}' must be {shape}");
        var body = spec;
        string? name = null;
        var eq = body.IndexOf('=');
        if (eq >= 0)
        {
            name = body[..eq];
            body = body[(eq + 1)..];
            if (name.Length is 0 or > 63 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
                throw new ServiceArgumentException($"{flag} '{Printable(spec)}': port name '{Printable(name)}' must be 1..63 of A-Z, a-z, 0-9 and '-'");
        }
        var protocol = Tcp;
        var slash = body.LastIndexOf('/');
        if (slash >= 0)
        {
            protocol = body[(slash + 1)..];
            body = body[..slash];
            if (protocol is not (Tcp or Udp))
                throw new ServiceArgumentException($"{flag} '{Printable(spec)}': protocol '{Printable(protocol)}' must be tcp or udp");
        }
        return (name, body, protocol);
    }

    private static int Number(string text, string what, string spec)
    {
        if (text.Length is 0 or > 10 || !text.All(char.IsAsciiDigit))
            throw new ServiceArgumentException($"'{Printable(spec)}': {what} '{Printable(text)}' is not a number");
        var n = long.Parse(text, NumberStyles.None, CultureInfo.InvariantCulture);
        if (n is < 1 or > 65535) throw new ServiceArgumentException($"'{Printable(spec)}': {what} {n} is out of range 1..65535");
        return (int)n;
    }

    private static string HostIp(string text, string spec)
    {
        if (!IPAddress.TryParse(text, out var ip) || ip.AddressFamily != AddressFamily.InterNetwork || ip.ToString() != text)
            throw new ServiceArgumentException($"--publish '{Printable(spec)}': host address '{Printable(text)}' is not an IPv4 address");
        if (ip.Equals(IPAddress.Any))
            throw new ServiceArgumentException($"--publish '{Printable(spec)}': leave out 0.0.0.0 to publish on every host address");
        return text;
    }

    // Hostile text is echoed bounded and printable, so the error stays one line.
    private static string Printable(string? s) =>
        s is null ? "" : new string([.. s.Take(80).Select(c => c is < ' ' or > '~' ? '?' : c)]);
}
