using System.Buffers;
using System.Text;
using Discovery.Daemon.Agent;
using Discovery.Daemon.Health;
using Discovery.Model;
using Discovery.Overlay;
using Xunit;

namespace Discovery.Tests.Agent;

/// <summary>The pure parts of the health checks: the verdict's hysteresis, the HTTP status test, the state log record.</summary>
public class HealthCheckLogicTests
{
    [Fact]
    public void Two_failures_in_a_row_make_a_task_unhealthy_and_one_success_brings_it_back()
    {
        var t = new HealthThreshold(unhealthy: false);
        Assert.Null(t.Observe(false));
        Assert.Null(t.Observe(true));   // the streak is broken
        Assert.Null(t.Observe(false));
        Assert.Equal(true, t.Observe(false));
        Assert.Null(t.Observe(false));
        Assert.Equal(false, t.Observe(true));
        Assert.Null(t.Observe(true));
    }

    [Fact]
    public void A_verdict_restored_as_unhealthy_needs_one_success()
    {
        var t = new HealthThreshold(unhealthy: true);
        Assert.Null(t.Observe(false));
        Assert.Equal(false, t.Observe(true));
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\n", true)]
    [InlineData("HTTP/1.0 302 Found\r\n", true)]
    [InlineData("HTTP/1.1 404 Not Found\r\n", false)]
    [InlineData("HTTP/1.1 500 Oops\r\n", false)]
    [InlineData("HTTP/1.1 199 x", false)]
    [InlineData("SSH-2.0-OpenSSH", false)]
    [InlineData("HTTP/1.1 2", false)]
    [InlineData("", false)]
    public void Http_status_200_to_399_is_healthy(string response, bool healthy)
        => Assert.Equal(healthy, HealthProbe.StatusIsHealthy(Encoding.ASCII.GetBytes(response)));

    [Fact]
    public void A_place_keeps_its_health_check_through_the_state_log_and_an_old_place_reads_without_one()
    {
        var w = new ArrayBufferWriter<byte>();
        w.Write(StateLogCodec.Magic);
        var withCheck = new EndpointPlace("/run/netns/a", "eth0") { Health = HealthCheckSpec.Parse("http:8080/healthz", 3) };
        var without = new EndpointPlace("/run/netns/b", "eth1");
        StateLogCodec.Append(w, new StateRecord.PlaceSet("a", withCheck));
        StateLogCodec.Append(w, new StateRecord.PlaceSet("b", without));
        var records = StateLogCodec.Scan(w.WrittenSpan).Records;
        Assert.Equal([new StateRecord.PlaceSet("a", withCheck), new StateRecord.PlaceSet("b", without)], records);
    }
}
