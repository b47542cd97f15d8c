using System.Net;
using Discovery.Lb.Programming;
using Discovery.Lb.Rendering;
using Discovery.Platform;
using Discovery.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Xunit;

namespace Discovery.Tests.Lb;

/// <summary>
/// <see cref="ConntrackFlowCleanup"/> against real conntrack entries in a client sandbox whose table a real
/// <see cref="Discovery.Lb.Sandboxes.SandboxTables"/> owns; the drain grace runs on a fake clock.
/// </summary>
public sealed class FlowCleanupTests
{
    private static int s_subnet = Random.Shared.Next(20, 200);
    private static int NextSubnet() => Interlocked.Increment(ref s_subnet) % 250;

    [Fact]
    public async Task A_draining_backend_keeps_its_flows_if_back_in_the_slots_when_its_grace_ends_and_loses_them_if_not()
    {
        using var lab = new LbNamespaces(2, NextSubnet());
        lab.AttachClient();
        var vip = lab.Vip();
        var service = LbNamespaces.Service("web", vip);
        lab.Program(service, lab.Backends.Select(b => b.Endpoint));
        var reply = await lab.UdpAsk(vip);   // one UDP flow, pinned by conntrack to the backend that answered
        var backend = lab.Backends.Single(b => reply.StartsWith(b.Name + " ", StringComparison.Ordinal));
        int Flows()
        {
            using var table = ConntrackTable.Open(lab.Client);
            return table.List(new BackendFlows(backend.Address, FlowProtocols.UdpAndTcp) { Vip = vip }).Count;
        }
        Assert.Equal(1, Flows());

        var time = new FakeTimeProvider();
        using var cleanup = new ConntrackFlowCleanup(lab.Tables, lab.Metrics, time, NullLogger.Instance);
        using var stop = new CancellationTokenSource();
        var worker = Task.Run(() => cleanup.RunAsync(stop.Token));
        VipPort[] ports = [new(vip, VipPort.Tcp, LbNamespaces.Port), new(vip, VipPort.Udp, LbNamespaces.Port)];
        try
        {
            // Still in the slots (say the drain was undone) when the grace ends: the flow stays.
            cleanup.BackendDraining("net", ports, backend.Address, TimeSpan.FromSeconds(2));
            time.Advance(TimeSpan.FromSeconds(1.5));
            Assert.Equal(1, cleanup.Waiting);
            time.Advance(TimeSpan.FromSeconds(0.5));
            await Eventually.Until(() => cleanup.Done == 1, TimeSpan.FromSeconds(5), "the first cut handled");
            Assert.Equal(1, Flows());

            // Out of the slots when the grace ends: the flow is deleted.
            lab.Program(service, lab.Backends.Where(b => b != backend).Select(b => b.Endpoint));
            cleanup.BackendDraining("net", ports, backend.Address, TimeSpan.FromSeconds(2));
            time.Advance(TimeSpan.FromSeconds(2));
            await Eventually.Until(() => cleanup.Done == 2, TimeSpan.FromSeconds(5), "the second cut handled");
            Assert.Equal(0, Flows());
        }
        finally
        {
            await stop.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => worker);
        }
    }
}
