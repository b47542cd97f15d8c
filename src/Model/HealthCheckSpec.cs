using System.Globalization;

namespace Discovery.Model;

/// <summary>What an active health check of a task connects to.</summary>
public enum HealthCheckKind : byte
{
    /// <summary>A TCP connect that completes.</summary>
    Tcp = 1,
    /// <summary>An HTTP/1.0 GET whose status is 200..399 (as a kubelet's httpGet probe).</summary>
    Http = 2,
}

/// <summary>
/// An endpoint's health check, from `attach --health tcp:PORT | http:PORT/PATH --health-interval SECONDS`. Local
/// bookkeeping of the owning agent (it runs the check and gossips only the result, EndpointRecord.Unhealthy).
/// </summary>
/// <param name="Port">The task's port, 1..65535.</param>
/// <param name="Path">For http: the request path, starting with '/'; empty for tcp.</param>
/// <param name="IntervalSeconds">Time between two checks, 1..3600.</param>
public sealed record HealthCheckSpec(HealthCheckKind Kind, ushort Port, string Path, int IntervalSeconds)
{
    public const int DefaultIntervalSeconds = 5;
    public const int MaxIntervalSeconds = 3600;
    public const int MaxPathLength = 1024;

    public TimeSpan Interval => TimeSpan.FromSeconds(IntervalSeconds);

    /// <summary>Half the interval, at most 10 s: a check ends before the next one is due, so checks never pile up.</summary>
    public TimeSpan Timeout => TimeSpan.FromMilliseconds(Math.Min(IntervalSeconds * 500L, 10_000L));

    public override string ToString() => Kind == HealthCheckKind.Tcp ? $"tcp:{Port}" : $"http:{Port}{Path}";

    /// <summary>Parses the CLI/API form. Throws <see cref="FormatException"/> with one line for the operator.</summary>
    public static HealthCheckSpec Parse(string text, int? intervalSeconds)
    {
        int interval = intervalSeconds ?? DefaultIntervalSeconds;
        if (interval is < 1 or > MaxIntervalSeconds)
            throw new FormatException($"health interval {interval} is out of range (1..{MaxIntervalSeconds} seconds)");
        int colon = text.IndexOf(':');
        string kind = colon < 0 ? text : text[..colon];
        string rest = colon < 0 ? "" : text[(colon + 1)..];
        switch (kind)
        {
            case "tcp":
                return new HealthCheckSpec(HealthCheckKind.Tcp, ParsePort(text, rest), "", interval);
            case "http":
                int slash = rest.IndexOf('/');
                if (slash < 0) throw new FormatException($"health check '{text}': the path must start with '/' (http:PORT/PATH)");
                string path = rest[slash..];
                if (path.Length > MaxPathLength || path.Any(c => c <= ' ' || c >= 0x7F))
                    throw new FormatException($"health check '{text}': the path must be at most {MaxPathLength} printable ASCII characters without spaces");
                return new HealthCheckSpec(HealthCheckKind.Http, ParsePort(text, rest[..slash]), path, interval);
            default:
                throw new FormatException($"health check '{text}' must be tcp:PORT or http:PORT/PATH");
        }
    }

    private static ushort ParsePort(string text, string port)
    {
        if (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int p))
            throw new FormatException($"health check '{text}' must be tcp:PORT or http:PORT/PATH");
        if (p is < 1 or > 65535) throw new FormatException($"health check '{text}': port {p} is out of range (1..65535)");
        return (ushort)p;
    }
}
