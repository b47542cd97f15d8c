namespace Discovery.Daemon.Hosting;

/// <summary>The peer programmer running now (replaced when its loop restarts), for the per-network peer gauge.</summary>
public sealed class CurrentPeers
{
    private volatile Overlay.Peers.PeerProgrammer? _programmer;

    public Overlay.Peers.PeerProgrammer? Programmer { get => _programmer; set => _programmer = value; }

    public IReadOnlyDictionary<string, int> Peers => (IReadOnlyDictionary<string, int>?)_programmer?.Peers ?? new Dictionary<string, int>();
}
