using System.Net;
using System.Net.Sockets;
using Discovery.Platform;
using Xunit;

namespace Discovery.Tests.Platform;

/// <summary>Long-lived sockets leave descriptors below 1024 to libnftables, whose select() aborts the process above.</summary>
public sealed class DescriptorPlacementTests
{
    [Fact]
    public void A_moved_udp_socket_sits_above_the_select_range_and_still_receives()
    {
        var low = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        low.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)low.LocalEndPoint!).Port;
        Assert.True(low.SafeHandle.DangerousGetHandle() < DescriptorPlacement.SelectLimit, "the test needs a socket that starts below 1024");

        using var moved = DescriptorPlacement.MoveAboveSelectRange(low);
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        sender.SendTo("ping"u8.ToArray(), new IPEndPoint(IPAddress.Loopback, port));
        var buffer = new byte[16];
        moved.ReceiveTimeout = 5000;
        var n = moved.Receive(buffer);

        Assert.True(moved.SafeHandle.DangerousGetHandle() >= DescriptorPlacement.SelectLimit);
        Assert.Equal(port, ((IPEndPoint)moved.LocalEndPoint!).Port);
        Assert.Equal("ping", System.Text.Encoding.ASCII.GetString(buffer, 0, n));
        Assert.Throws<ObjectDisposedException>(() => low.Receive(buffer)); // the low descriptor is closed, not leaked
    }

    [Fact]
    public async Task A_moved_listening_tcp_socket_still_accepts()
    {
        var low = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        low.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        low.Listen(8);
        var port = ((IPEndPoint)low.LocalEndPoint!).Port;

        using var moved = DescriptorPlacement.MoveAboveSelectRange(low);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        using var accepted = await moved.AcceptAsync().WaitAsync(TimeSpan.FromSeconds(5));

        Assert.True(moved.SafeHandle.DangerousGetHandle() >= DescriptorPlacement.SelectLimit);
        Assert.True(accepted.Connected);
    }
}
