using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

public class HealthCheckSpecTests
{
    [Theory]
    [InlineData("tcp:8080", null, HealthCheckKind.Tcp, 8080, "", 5)]
    [InlineData("http:80/healthz", 2, HealthCheckKind.Http, 80, "/healthz", 2)]
    [InlineData("http:65535/", 3600, HealthCheckKind.Http, 65535, "/", 3600)]
    public void Parses_tcp_and_http_checks_with_the_default_interval(string text, int? interval, HealthCheckKind kind, int port, string path, int seconds)
    {
        var spec = HealthCheckSpec.Parse(text, interval);
        Assert.Equal(new HealthCheckSpec(kind, (ushort)port, path, seconds), spec);
        Assert.Equal(text, spec.ToString());
        Assert.True(spec.Timeout < spec.Interval);
    }

    [Theory]
    [InlineData("udp:53", null, "must be tcp:PORT or http:PORT/PATH")]
    [InlineData("tcp:", null, "must be tcp:PORT or http:PORT/PATH")]
    [InlineData("tcp:0", null, "port 0 is out of range (1..65535)")]
    [InlineData("tcp:70000", null, "port 70000 is out of range (1..65535)")]
    [InlineData("http:80", null, "the path must start with '/'")]
    [InlineData("http:80healthz", null, "the path must start with '/'")]
    [InlineData("http:80/a b", null, "printable ASCII characters without spaces")]
    [InlineData("tcp:80", 0, "health interval 0 is out of range (1..3600 seconds)")]
    [InlineData("tcp:80", 3601, "health interval 3601 is out of range")]
    public void Rejects_a_bad_check_with_one_line(string text, int? interval, string expected)
    {
        var e = Assert.Throws<FormatException>(() => HealthCheckSpec.Parse(text, interval));
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void The_timeout_is_half_the_interval_and_at_most_ten_seconds()
    {
        Assert.Equal(TimeSpan.FromMilliseconds(500), HealthCheckSpec.Parse("tcp:1", 1).Timeout);
        Assert.Equal(TimeSpan.FromSeconds(10), HealthCheckSpec.Parse("tcp:1", 60).Timeout);
    }
}
