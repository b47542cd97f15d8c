using System.Net;

namespace Discovery.Bench.Lb;

/// <summary>One backend of a service: an address and a target port.</summary>
internal sealed record Backend(IPAddress Address, int Port)
{
    public override string ToString() => $"{Address}:{Port}";
}

/// <summary>
/// N services × B backends, all TCP port 80, with addresses from 198.19.0.0/16 only (the reference scripts' plan,
/// so numbers compare with /work/shared/reference/lb-anchors.md):
/// VIP of service i = 198.19.(i/250).(1+i%250), i.e. 198.19.0-63.x; backends 198.19.64-251.x on ports 8000+; the
/// last service is the probe: VIP 198.19.253.1 → 198.19.254.1-B:80, where the connection-rate server listens.
/// Replacement backends for the change benches come from 198.19.252.x, which nothing else uses.
/// </summary>
internal sealed class ServiceSet
{
    public const int MaxServices = 16_000;          // 64 × 250 VIPs below 198.19.64.0
    public static readonly IPAddress ProbeVip = IPAddress.Parse("198.19.253.1");
    public const int Port = 80;

    public ServiceSet(int services, int backendsPerService = 10)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(services, 2);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(services, MaxServices);
        ArgumentOutOfRangeException.ThrowIfLessThan(backendsPerService, 4);    // the changes rewrite slot 3
        ArgumentOutOfRangeException.ThrowIfGreaterThan(backendsPerService, 250);
        Count = services;
        BackendsPerService = backendsPerService;
    }

    public int Count { get; }

    public int BackendsPerService { get; }

    /// <summary>Index of the probe service (the last one: the worst case for a rule list matched in order).</summary>
    public int Probe => Count - 1;

    public IPAddress Vip(int service) =>
        service == Probe ? ProbeVip : new IPAddress([198, 19, (byte)(service / 250), (byte)(1 + service % 250)]);

    public Backend Backend(int service, int slot)
    {
        if (service == Probe) return new Backend(ProbeBackend(slot), Port);
        var j = service * BackendsPerService + slot;
        return new Backend(new IPAddress([198, 19, (byte)(64 + j / 250 % 188), (byte)(1 + j % 250)]), 8000 + j / 47_000);
    }

    /// <summary>Where the connection-rate server listens: 198.19.254.(1+slot).</summary>
    public static IPAddress ProbeBackend(int slot) => new([198, 19, 254, (byte)(1 + slot)]);

    /// <summary>The backend that change pair <paramref name="pair"/> puts in place; distinct per pair (mod 62,500).</summary>
    public static Backend Replacement(int pair) =>
        new(new IPAddress([198, 19, 252, (byte)(1 + pair % 250)]), 9000 + pair / 250 % 250);
}
