using System.Collections.Immutable;
using System.Net;
using Discovery.Lb.Selection;
using Discovery.Model;
using Xunit;

namespace Discovery.Tests.Selection;

public sealed class BackendSelectionTests
{
    internal static EndpointRecord Ep(int i, bool disabled = false, bool unhealthy = false, bool hostLeg = false) =>
        new(i.ToString("x64"), "net", "t" + i, ImmutableArray<string>.Empty, "web",
            IPAddress.Parse("198.19.1." + i), null, "02:00:00:00:00:01", "n1", IPAddress.Parse("198.18.0.1"), "", "",
            ImmutableArray<ServicePort>.Empty, disabled) { Unhealthy = unhealthy, HostLeg = hostLeg };

    [Fact]
    public void Ready_endpoints_get_slots_and_draining_unhealthy_and_host_legs_do_not()
    {
        var chosen = BackendSelection.Select([Ep(3), Ep(1), Ep(2, disabled: true), Ep(4, unhealthy: true), Ep(5, hostLeg: true)]);
        Assert.Equal([Ep(1).Id, Ep(3).Id], chosen.Select(b => b.Id));
    }

    [Fact]
    public void When_none_is_ready_every_unhealthy_non_draining_endpoint_is_used()
    {
        var chosen = BackendSelection.Select([Ep(1, unhealthy: true), Ep(2, disabled: true), Ep(3, unhealthy: true), Ep(4, disabled: true, unhealthy: true)]);
        Assert.Equal([Ep(1).Id, Ep(3).Id], chosen.Select(b => b.Id));
    }

    [Fact]
    public void Only_draining_endpoints_give_no_backend()
    {
        Assert.Empty(BackendSelection.Select([Ep(1, disabled: true), Ep(2, hostLeg: true)]));
    }

    [Fact]
    public void Order_of_the_catalog_does_not_change_the_result()
    {
        var a = BackendSelection.Select([Ep(1), Ep(2), Ep(3)]);
        var b = BackendSelection.Select([Ep(3), Ep(1), Ep(2)]);
        Assert.Equal(a.AsEnumerable(), b.AsEnumerable());
    }

    [Fact]
    public void A_draining_unhealthy_endpoint_counts_as_draining()
    {
        Assert.Equal(BackendState.Draining, BackendSelection.StateOf(Ep(1, disabled: true, unhealthy: true)));
        Assert.Equal(BackendState.Unhealthy, BackendSelection.StateOf(Ep(1, unhealthy: true)));
        Assert.Equal(BackendState.Ready, BackendSelection.StateOf(Ep(1)));
    }
}
