using System.Net;
using Discovery.Gossip.Serf;
using Discovery.Gossip.Wire;

namespace Discovery.Gossip.Membership;

/// <summary>A snapshot of one member as this node sees it.</summary>
/// <param name="Protocol">memberlist's Vsn: pmin, pmax, pcur, dmin, dmax, dcur.</param>
public sealed record Member(string Name, IPAddress Address, int Port, MemberState State, uint Incarnation, byte[] Meta, byte[] Protocol)
{
    private IReadOnlyDictionary<string, string>? _tags;

    /// <summary>The serf tags carried in <see cref="Meta"/>.</summary>
    public IReadOnlyDictionary<string, string> Tags => _tags ??= SerfTags.Decode(Meta);

    public IPEndPoint EndPoint => new(Address, Port);

    /// <summary>serf's words for the state: alive, suspect (serf shows it as alive), failed, left.</summary>
    public string StatusText => State switch
    {
        MemberState.Alive => "alive",
        MemberState.Suspect => "suspect",
        MemberState.Dead => "failed",
        MemberState.Left => "left",
        _ => "unknown",
    };
}
