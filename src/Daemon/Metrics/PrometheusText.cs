using System.Globalization;
using System.Text;

namespace Discovery.Daemon.Metrics;

/// <summary>The kind of a metric family, as its <c># TYPE</c> line names it.</summary>
public enum MetricKind { Counter, Gauge, Histogram }

/// <summary>
/// Writes the Prometheus text exposition format 0.0.4: family headers, samples, escaping and number formatting.
/// Pure: it knows nothing about meters, so the exact text is unit-tested without an agent.
/// </summary>
public static class PrometheusText
{
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>The family name a sample is exported under: counters end in <c>_total</c> (added if the instrument's
    /// name lacks it), everything else keeps its name.</summary>
    public static string FamilyName(string instrumentName, MetricKind kind) =>
        kind == MetricKind.Counter && !instrumentName.EndsWith("_total", StringComparison.Ordinal) ? instrumentName + "_total" : instrumentName;

    public static void Header(StringBuilder sb, string name, string help, MetricKind kind)
    {
        sb.Append("# HELP ").Append(name).Append(' ');
        EscapeHelp(sb, help);
        sb.Append('\n').Append("# TYPE ").Append(name).Append(' ').Append(kind switch
        {
            MetricKind.Counter => "counter",
            MetricKind.Histogram => "histogram",
            _ => "gauge",
        }).Append('\n');
    }

    /// <summary>One sample line: <c>name{l1="v1",...,extra="v"} value</c>. <paramref name="extraName"/> is the
    /// histogram's <c>le</c>, written last as Prometheus clients do.</summary>
    public static void Sample(StringBuilder sb, string name, ReadOnlySpan<string> labelNames, ReadOnlySpan<string> labelValues,
        double value, string? extraName = null, string? extraValue = null)
    {
        sb.Append(name);
        if (labelNames.Length > 0 || extraName is not null)
        {
            sb.Append('{');
            for (int i = 0; i < labelNames.Length; i++)
            {
                if (i > 0) sb.Append(',');
                sb.Append(labelNames[i]).Append("=\"");
                EscapeLabelValue(sb, labelValues[i]);
                sb.Append('"');
            }
            if (extraName is not null)
            {
                if (labelNames.Length > 0) sb.Append(',');
                sb.Append(extraName).Append("=\"");
                EscapeLabelValue(sb, extraValue ?? "");
                sb.Append('"');
            }
            sb.Append('}');
        }
        sb.Append(' ');
        Number(sb, value);
        sb.Append('\n');
    }

    /// <summary>Go's float syntax, which Prometheus parses: shortest round-trip digits, <c>e</c> exponents, +Inf/-Inf/NaN.</summary>
    public static void Number(StringBuilder sb, double value)
    {
        if (double.IsNaN(value)) { sb.Append("NaN"); return; }
        if (double.IsPositiveInfinity(value)) { sb.Append("+Inf"); return; }
        if (double.IsNegativeInfinity(value)) { sb.Append("-Inf"); return; }
        Span<char> buf = stackalloc char[32];
        if (!value.TryFormat(buf, out int n, "R", CultureInfo.InvariantCulture))
        {
            sb.Append(value.ToString("R", CultureInfo.InvariantCulture).Replace('E', 'e'));
            return;
        }
        for (int i = 0; i < n; i++) sb.Append(buf[i] == 'E' ? 'e' : buf[i]);
    }

    /// <summary>The <c>le</c> label value of a bucket bound (the same digits as <see cref="Number"/>).</summary>
    public static string Bound(double bound)
    {
        var sb = new StringBuilder(16);
        Number(sb, bound);
        return sb.ToString();
    }

    /// <summary>Label values escape backslash, double quote and line feed.</summary>
    public static void EscapeLabelValue(StringBuilder sb, string value)
    {
        foreach (char c in value)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '"': sb.Append("\\\""); break;
                case '\n': sb.Append("\\n"); break;
                default: sb.Append(c); break;
            }
        }
    }

    /// <summary>HELP text escapes backslash and line feed (a quote is literal there).</summary>
    public static void EscapeHelp(StringBuilder sb, string help)
    {
        foreach (char c in help)
        {
            switch (c)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                default: sb.Append(c); break;
            }
        }
    }

    /// <summary>Whether a name is a valid metric or label name (<c>[a-zA-Z_:][a-zA-Z0-9_:]*</c>; no colon for labels).</summary>
    public static bool IsValidName(string name, bool label = false)
    {
        if (name.Length == 0) return false;
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            bool ok = c is (>= 'a' and <= 'z') or (>= 'A' and <= 'Z') or '_' || (!label && c == ':') || (i > 0 && c is >= '0' and <= '9');
            if (!ok) return false;
        }
        return true;
    }
}
