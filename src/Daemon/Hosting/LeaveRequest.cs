using Microsoft.Extensions.Hosting;

namespace Discovery.Daemon.Hosting;

/// <summary>A graceful leave asked through the API: the agent stops, and its stop path leaves the cluster first.</summary>
public sealed class LeaveRequest(IHostApplicationLifetime lifetime)
{
    private volatile bool _requested;

    public bool Requested => _requested;

    public void Request()
    {
        _requested = true;
        lifetime.StopApplication();
    }
}
