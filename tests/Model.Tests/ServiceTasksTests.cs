using System.Collections.Immutable;
using System.Net;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests;

public class ServiceTasksTests
{
    private static EndpointRecord Ep(int i, bool unhealthy = false, bool disabled = false, bool hostLeg = false) =>
        new EndpointRecord($"{i:x}".PadRight(64, '0'), "n1", $"t{i}", ImmutableArray<string>.Empty, "web", IPAddress.Parse($"198.19.0.{i + 2}"), null,
            "02:42:c6:13:00:02", "node-1", IPAddress.Parse("198.18.0.1"), "", "", ImmutableArray<ServicePort>.Empty, disabled)
        { Unhealthy = unhealthy, HostLeg = hostLeg };

    private static string[] Names(IEnumerable<EndpointRecord> eps) => [.. eps.Select(e => e.Name)];

    [Fact]
    public void Healthy_tasks_are_answered_and_unhealthy_ones_left_out()
        => Assert.Equal(["t1", "t3"], Names(ServiceTasks.Answerable([Ep(1), Ep(2, unhealthy: true), Ep(3)])));

    [Fact]
    public void When_every_task_is_unhealthy_all_are_answered()
        => Assert.Equal(["t1", "t2"], Names(ServiceTasks.Answerable([Ep(1, unhealthy: true), Ep(2, unhealthy: true)])));

    [Fact]
    public void Draining_tasks_and_host_legs_are_never_answered_even_in_the_fallback()
        => Assert.Equal(["t1"], Names(ServiceTasks.Answerable([Ep(1, unhealthy: true), Ep(2, disabled: true), Ep(3, hostLeg: true)])));

    [Fact]
    public void A_list_with_nothing_to_leave_out_is_returned_as_is()
    {
        EndpointRecord[] all = [Ep(1), Ep(2)];
        Assert.Same(all, ServiceTasks.Answerable(all));
    }
}
