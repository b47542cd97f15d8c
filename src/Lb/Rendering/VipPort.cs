using System.Net;

namespace Discovery.Lb.Rendering;

/// <summary>One port of a service's VIP: what a client connects to (the VIP answers on each port's target port).</summary>
/// <param name="Vip">The service's VIP on one network.</param>
/// <param name="Protocol">IP protocol number: 6 (tcp) or 17 (udp).</param>
/// <param name="Port">The port, which is also the tasks' target port.</param>
public readonly record struct VipPort(IPAddress Vip, byte Protocol, ushort Port)
{
    public const byte Tcp = 6, Udp = 17;

    /// <summary>"tcp"/"udp" as the model spells it → protocol number; null for anything else.</summary>
    public static byte? ProtocolOf(string protocol) => protocol switch { "tcp" => Tcp, "udp" => Udp, _ => null };

    public string ProtocolName => Protocol == Udp ? "udp" : "tcp";

    public override string ToString() => $"{Vip}:{Port}/{ProtocolName}";
}
