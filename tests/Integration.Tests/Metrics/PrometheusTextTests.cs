using System.Text;
using Discovery.Daemon.Metrics;
using Xunit;

namespace Discovery.Tests.Metrics;

/// <summary>The text format's pure parts: escaping, numbers, sample lines, family names.</summary>
public sealed class PrometheusTextTests
{
    private static string Render(Action<StringBuilder> write)
    {
        var sb = new StringBuilder();
        write(sb);
        return sb.ToString();
    }

    [Fact]
    public void Label_values_escape_backslash_quote_and_newline_and_nothing_else()
    {
        var line = Render(sb => PrometheusText.Sample(sb, "m", ["a"], ["x\\y\"z\nw\tü"], 1));
        Assert.Equal("m{a=\"x\\\\y\\\"z\\nw\tü\"} 1\n", line);
    }

    [Fact]
    public void Help_escapes_backslash_and_newline_but_keeps_quotes()
    {
        var text = Render(sb => PrometheusText.Header(sb, "m", "say \"hi\"\\\nnext", MetricKind.Gauge));
        Assert.Equal("# HELP m say \"hi\"\\\\\\nnext\n# TYPE m gauge\n", text);
    }

    [Theory]
    [InlineData(0.000005, "5e-06")]
    [InlineData(0.00016, "0.00016")]
    [InlineData(1796147299.722378, "1796147299.722378")]
    [InlineData(3, "3")]
    [InlineData(0.1 + 0.2, "0.30000000000000004")]
    [InlineData(double.PositiveInfinity, "+Inf")]
    [InlineData(double.NegativeInfinity, "-Inf")]
    [InlineData(double.NaN, "NaN")]
    public void Numbers_use_go_float_syntax(double value, string expected) =>
        Assert.Equal(expected, Render(sb => PrometheusText.Number(sb, value)));

    [Fact]
    public void A_sample_without_labels_has_no_braces_and_le_comes_last()
    {
        Assert.Equal("m 2\n", Render(sb => PrometheusText.Sample(sb, "m", [], [], 2)));
        Assert.Equal("m_bucket{le=\"+Inf\"} 2\n", Render(sb => PrometheusText.Sample(sb, "m_bucket", [], [], 2, "le", "+Inf")));
        Assert.Equal("m_bucket{path=\"local\",le=\"0.001\"} 4\n",
            Render(sb => PrometheusText.Sample(sb, "m_bucket", ["path"], ["local"], 4, "le", "0.001")));
    }

    [Fact]
    public void Counter_family_names_end_in_total_once()
    {
        Assert.Equal("x_total", PrometheusText.FamilyName("x", MetricKind.Counter));
        Assert.Equal("x_total", PrometheusText.FamilyName("x_total", MetricKind.Counter));
        Assert.Equal("x", PrometheusText.FamilyName("x", MetricKind.Gauge));
        Assert.Equal("x_seconds", PrometheusText.FamilyName("x_seconds", MetricKind.Histogram));
    }

    [Theory]
    [InlineData("discovery_dns_queries_total", false, true)]
    [InlineData("a:b", false, true)]
    [InlineData("a:b", true, false)]
    [InlineData("9a", false, false)]
    [InlineData("a-b", true, false)]
    [InlineData("", true, false)]
    public void Names_follow_the_data_model(string name, bool label, bool valid) =>
        Assert.Equal(valid, PrometheusText.IsValidName(name, label));
}
