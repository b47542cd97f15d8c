namespace Discovery.Overlay.Peers;

/// <summary>Timing of <see cref="PeerProgrammer"/>.</summary>
public sealed class PeerProgrammerOptions
{
    /// <summary>A network whose apply failed is tried again after this long, from a fresh read of its vxlan0. The delay
    /// doubles with each pass that fails again, up to 32 times this.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Every this long each vxlan0 is read back from the kernel and corrected, which heals changes made
    /// behind the agent's back (an operator's `bridge fdb del`). <see cref="TimeSpan.Zero"/> turns it off.</summary>
    public TimeSpan ResyncInterval { get; init; } = TimeSpan.FromMinutes(1);
}

/// <summary>What one sync did to one network's vxlan0.</summary>
/// <param name="Ops">Peer ops applied (0 when the kernel already matched).</param>
/// <param name="Peers">Remote endpoints the vxlan0 now reaches; 0 when the network has no local endpoint.</param>
/// <param name="ReadKernel">True if the vxlan0 was read back from the kernel rather than taken from the last apply.</param>
/// <param name="Error">Why the apply failed (it is retried), or null.</param>
public sealed record NetworkSync(string Network, int Ops, int Peers, bool ReadKernel, string? Error);

/// <summary>One pass of <see cref="PeerProgrammer"/> over the networks that needed it.</summary>
public sealed record PeerSyncReport(IReadOnlyList<NetworkSync> Networks, TimeSpan Duration)
{
    public int Ops => Networks.Sum(n => n.Ops);

    public int Failures => Networks.Count(n => n.Error is not null);
}
