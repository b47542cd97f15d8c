namespace Discovery.Model.Claims;

/// <summary>The kinds of resources claimed through <see cref="ClaimBoard"/>, and the scope of cluster-wide ones.
/// Short: they are part of every claim key that travels in gossip.</summary>
public static class ClaimKinds
{
    /// <summary>Scope of resources unique in the whole cluster (VNIs, subnets, network names).</summary>
    public const string Cluster = "cluster";

    public const string Block = "blk";       // an IPAM block of a network (scope: network; resource: block CIDR)
    public const string Address = "addr";    // one borrowed address in another node's block (scope: network; resource: address)
    public const string Vni = "vni";         // a VXLAN network identifier (scope: cluster; resource: decimal VNI)
    public const string Subnet = "subnet";   // a network's subnet (scope: cluster; resource: CIDR; conflicts by overlap)
    public const string NetworkName = "net"; // a network name while it is being created (scope: cluster)
    public const string Vip = "vip";         // a service VIP, for the load-balancing issue (scope: network; resource: address)
    public const string Port = "port";       // a published port (scope: cluster; resource: "tcp/8080" or "tcp/198.18.0.1:8080"; conflicts by overlap)
    public const string ServiceName = "svc"; // a service name while it is being created (scope: cluster)
}
