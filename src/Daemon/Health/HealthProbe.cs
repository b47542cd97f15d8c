using System.Net;
using System.Net.Sockets;
using System.Text;
using Discovery.Model;

namespace Discovery.Daemon.Health;

/// <summary>
/// One check of a task: a TCP connect, or an HTTP/1.0 GET whose status line says 200..399. The socket comes from the
/// caller (opened in the network's overlay namespace); the I/O is async, so no thread waits on a slow task.
/// </summary>
public static class HealthProbe
{
    private const int MaxStatusLine = 1024;

    /// <summary>True if the task answered as its check expects before the timeout; false on any failure.</summary>
    public static async Task<bool> RunAsync(Socket socket, IPAddress address, HealthCheckSpec spec, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(spec.Timeout);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(address, spec.Port), timeout.Token).ConfigureAwait(false);
            if (spec.Kind == HealthCheckKind.Tcp) return true;
            var request = Encoding.ASCII.GetBytes($"GET {spec.Path} HTTP/1.0\r\nHost: {address}:{spec.Port}\r\nUser-Agent: discovery-health\r\nConnection: close\r\n\r\n");
            await socket.SendAsync(request, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            var buffer = new byte[MaxStatusLine];
            int read = 0;
            while (read < buffer.Length)
            {
                int n = await socket.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                if (n == 0) break;
                read += n;
                if (buffer.AsSpan(0, read).IndexOf((byte)'\n') >= 0) break;
            }
            return StatusIsHealthy(buffer.AsSpan(0, read));
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            if (ct.IsCancellationRequested) throw;
            return false;
        }
    }

    /// <summary>"HTTP/1.x NNN ..." with NNN in 200..399. Pure, for tests.</summary>
    public static bool StatusIsHealthy(ReadOnlySpan<byte> response)
    {
        // "HTTP/1.1 200": the code sits at 9..11.
        if (response.Length < 12 || !response.StartsWith("HTTP/"u8) || response[8] != (byte)' ') return false;
        int code = 0;
        for (int i = 9; i < 12; i++)
        {
            if (response[i] is < (byte)'0' or > (byte)'9') return false;
            code = code * 10 + (response[i] - '0');
        }
        return code is >= 200 and < 400;
    }
}
