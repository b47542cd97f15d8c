using System.Threading.Channels;
using Discovery.Platform;
using Microsoft.Extensions.Logging;

namespace Discovery.Overlay;

/// <summary>
/// Deletes the veths of detached endpoints after the detach has answered: a veth deletion waits out an RCU grace
/// period in the kernel (~10-20 ms), most of a detach's time. One consumer task for all of them, not one per veth.
/// A deletion that fails is logged and left to the next start-up's reconcile, which removes host ends that belong to
/// no endpoint; a container end left behind is down and renamed, so it holds no name and carries no traffic.
/// </summary>
public sealed class VethReaper
{
    private readonly Channel<(string Network, string HostEnd)> _queue =
        Channel.CreateUnbounded<(string, string)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Func<string, string, bool> _delete;
    private readonly ILogger _log;
    private int _pending;

    public VethReaper(Func<string, string, bool> delete, ILogger log)
    {
        _delete = delete;
        _log = log;
        _ = Task.Run(ConsumeAsync);
    }

    /// <summary>Veths queued and not yet deleted.</summary>
    public int Pending => Volatile.Read(ref _pending);

    public void Enqueue(string network, string hostEnd)
    {
        Interlocked.Increment(ref _pending);
        if (!_queue.Writer.TryWrite((network, hostEnd))) Interlocked.Decrement(ref _pending);
    }

    private async Task ConsumeAsync()
    {
        await foreach (var (network, hostEnd) in _queue.Reader.ReadAllAsync())
        {
            try { _delete(network, hostEnd); }
            catch (Exception ex) when (ex is NetlinkException or NamespaceException)
            {
                _log.LogWarning("deleting veth {HostEnd} of a detached endpoint on {Network} failed; the next start-up removes it: {Reason}",
                    hostEnd, network, ex.Message);
            }
            finally { Interlocked.Decrement(ref _pending); }
        }
    }
}
