using System.Net;
using System.Net.Sockets;
using System.Text;
using Discovery.Platform;

namespace Discovery.Tests.Lab;

/// <summary>
/// A TCP server in a task's namespace that answers every connection with "NAME CLIENT-IP" and closes it first (so the
/// client, not this side, is free of TIME_WAIT): accepting and answering take microseconds, unlike a CGI, so a probe
/// loop can open a new connection every millisecond or two.
/// </summary>
public sealed class TcpNameServer : IDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public TcpNameServer(string netns, string name, IPAddress address, int port)
    {
        using var ns = NetNs.Open(netns);
        _listener = ns.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            s.Bind(new IPEndPoint(address, port));
            s.Listen(512);
            return s;
        });
        _loop = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket c;
                try { c = await _listener.AcceptAsync(_stop.Token); }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
                using (c)
                {
                    try { await c.SendAsync(Encoding.ASCII.GetBytes($"{name} {((IPEndPoint)c.RemoteEndPoint!).Address}")); }
                    catch (SocketException) { /* the client gave up first: nothing to answer */ }
                }
            }
        });
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        _loop.Wait(TimeSpan.FromSeconds(2));
        _stop.Dispose();
    }
}
