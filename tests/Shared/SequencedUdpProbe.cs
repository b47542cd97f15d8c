using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Discovery.Testing;

/// <summary>
/// One UDP flow to a VIP from a socket bound to a fixed source port (as a DNS client or a game keeps one): each probe
/// sends a sequence number, and the backend echoes "NAME SEQ", so a late answer to an earlier probe is never taken
/// for this one. Shared by the conntrack lab tests and bench/Conntrack. The socket's ReceiveTimeout bounds a probe.
/// </summary>
public sealed class SequencedUdpProbe(Socket socket, IPEndPoint vip) : IDisposable
{
    private int _seq;

    /// <summary>Which backend answered one datagram, or "timeout".</summary>
    public string Probe()
    {
        var seq = (++_seq).ToString(System.Globalization.CultureInfo.InvariantCulture);
        socket.SendTo(Encoding.ASCII.GetBytes(seq), vip);
        var buffer = new byte[64];
        while (true)
        {
            int n;
            try
            {
                n = socket.Receive(buffer);
            }
            catch (SocketException ex) when (ex.SocketErrorCode == SocketError.TimedOut)
            {
                return "timeout";
            }
            var parts = Encoding.ASCII.GetString(buffer, 0, n).Split(' ');
            if (parts.Length == 2 && parts[1] == seq) return parts[0];
        }
    }

    /// <summary>Which backend answers, for a probe expected to be answered: a datagram lost on a loaded machine (the
    /// first one also waits for ARP) is sent again on the same flow, up to 10 times.</summary>
    public string Answer()
    {
        var answer = "timeout";
        for (var i = 0; i < 10 && answer == "timeout"; i++) answer = Probe();
        return answer;
    }

    public void Dispose() => socket.Dispose();
}
