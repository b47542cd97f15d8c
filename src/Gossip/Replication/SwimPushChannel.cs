using System.Net;
using Discovery.Gossip.Membership;

namespace Discovery.Gossip.Replication;

/// <summary>The burst sender's view of a <see cref="SwimNode"/>: its random live peers and its reliable user messages.</summary>
/// <param name="eligible">Which members replicate the catalog (e.g. <see cref="Serf.AgentTags.IsDiscoveryAgent"/>, so a
/// plain serf agent in the mesh is not sent streams it would only log); null: every member. Quick and pure.</param>
public sealed class SwimPushChannel(SwimNode node, Func<Member, bool>? eligible = null) : ICatalogPushChannel
{
    public IReadOnlyList<IPEndPoint> PickPeers(int count) => node.RandomLivePeers(count, eligible);

    public Task SendAsync(IPEndPoint peer, byte[] message, TimeSpan timeout, CancellationToken cancellationToken) =>
        node.SendUserStreamAsync(peer, message, timeout, cancellationToken);
}
