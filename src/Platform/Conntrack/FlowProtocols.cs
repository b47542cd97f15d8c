namespace Discovery.Platform;

/// <summary>Which layer-4 protocols a conntrack delete covers.</summary>
[Flags]
public enum FlowProtocols
{
    Udp = 1,
    Tcp = 2,
    UdpAndTcp = Udp | Tcp,
}
