using Discovery.Platform;

namespace Discovery.Lb.Ingress;

/// <summary>
/// The host namespace's ingress table in the kernel. The first apply (and the first after a failure) loads the whole
/// table in one transaction, replacing whatever a previous run left; later applies send only element updates, one
/// transaction each: either diffed against what the last successful full apply left in memory, or handed over as
/// the before/after of the services that changed (<see cref="ApplyChanges"/>); the kernel is never listed.
/// Also sets the sysctls the routing mesh needs: ip_forward in the host, route_localnet on the legs that carry a port
/// published on 127.0.0.1, and only there (CVE-2020-8558).
/// </summary>
public sealed class IngressTable(NetNs host, string tableName)
{
    private IngressState? _applied;
    private bool _loaded;
    private bool _absent; // the table was removed because nothing is published: the next non-empty apply loads it whole

    public string Name => tableName;

    /// <summary>The host namespace the table lives in (published ports' conntrack entries are there too).</summary>
    public NetNs Host => host;

    /// <summary>The kernel holds what the last apply asked (a table, or none): false before the first apply and after a
    /// failure, when only a full <see cref="Apply"/> may follow.</summary>
    public bool Loaded => _loaded;

    /// <summary>The last successful apply left no table (nothing published).</summary>
    public bool Absent => _absent;

    /// <summary>Sends the element difference between the state <paramref name="before"/> and <paramref name="after"/> of the
    /// services that changed (their ports and the whole leg lists): O(those services). Only on a loaded, present table.</summary>
    public bool ApplyChanges(IngressState before, IngressState after)
    {
        if (!_loaded || _absent) throw new InvalidOperationException("element changes need a loaded table: apply the whole state first");
        _loaded = false;
        _applied = null;
        if (!after.Legs.IsEmpty) SetIfDifferent("net.ipv4.ip_forward", "1");
        foreach (var leg in after.LocalnetLegs) SetIfDifferent($"net.ipv4.conf.{leg}.route_localnet", "1");
        var text = IngressRuleset.Diff(tableName, before, after);
        if (text.Length > 0) Nftables.Apply(host, text);
        foreach (var leg in before.LocalnetLegs.Except(after.LocalnetLegs).Intersect(after.Legs))
            SetIfDifferent($"net.ipv4.conf.{leg}.route_localnet", "0");
        _loaded = true;
        return text.Length > 0;
    }

    /// <summary>Brings the table to <paramref name="desired"/>: element updates, or the whole table when
    /// <paramref name="reload"/> is set or the last apply failed (the next call reloads then).</summary>
    /// <returns>True if anything was sent to the kernel.</returns>
    public bool Apply(IngressState desired, bool reload = false)
    {
        var previous = reload ? null : _applied;
        _applied = null;
        _loaded = false;
        if (desired.Legs.IsEmpty && desired.Ports.IsEmpty)
        {
            // Nothing published here: no table at all, so a host without published ports carries no trace of them.
            if (_absent && !reload)
            {
                _loaded = true;
                return false;
            }
            Remove();
            _absent = true;
            _loaded = true;
            return true;
        }
        _absent = false;
        if (!desired.Legs.IsEmpty) SetIfDifferent("net.ipv4.ip_forward", "1");
        foreach (var leg in desired.LocalnetLegs) SetIfDifferent($"net.ipv4.conf.{leg}.route_localnet", "1");
        var text = previous is null ? IngressRuleset.Render(tableName, desired) : IngressRuleset.Diff(tableName, previous, desired);
        if (text.Length > 0) Nftables.Apply(host, text);
        // A leg that no longer carries a 127.0.0.1 port loses route_localnet (a leg that is gone has no sysctl left).
        if (previous is not null)
            foreach (var leg in previous.LocalnetLegs.Except(desired.LocalnetLegs).Intersect(desired.Legs))
                SetIfDifferent($"net.ipv4.conf.{leg}.route_localnet", "0");
        _applied = desired;
        _loaded = true;
        return text.Length > 0;
    }

    /// <summary>Deletes the table, if there is one (the agent stops publishing).</summary>
    public void Remove()
    {
        _applied = null;
        _loaded = false;
        _absent = true;
        // add + delete: one transaction that succeeds whether or not the table exists.
        Nftables.Apply(host, $"add table ip {tableName}\ndelete table ip {tableName}\n");
    }

    private void SetIfDifferent(string key, string value)
    {
        if (Sysctl.Read(host, key).Trim() != value) Sysctl.Write(host, key, value);
    }
}
