using Discovery.Daemon.Agent;

namespace Discovery.Daemon.Hosting;

/// <summary>The endpoint record format to write, decided from the members' protocol tags once gossip runs; 1.0
/// (readable by every release) before that.</summary>
public sealed class EndpointFormatSource
{
    private volatile EndpointFormatPolicy? _policy;

    public EndpointFormatPolicy? Policy { get => _policy; set => _policy = value; }

    public Discovery.Model.EndpointFormat Current() => _policy?.Current() ?? Discovery.Model.EndpointFormat.Legacy;
}
