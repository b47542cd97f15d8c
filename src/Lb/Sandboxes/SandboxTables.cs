using System.Diagnostics;
using System.Net;
using Discovery.Lb.Rendering;
using Discovery.Platform;
using Microsoft.Extensions.Logging;

namespace Discovery.Lb.Sandboxes;

/// <summary>
/// The owner of every local sandbox's one nft table (<see cref="SandboxRuleset"/>): the redirect rules another
/// component hands in (<see cref="SandboxRules"/>) and the VIP sets and maps. It keeps the desired elements per
/// network — computed once per change and shared by every sandbox on that network — and:
/// <list type="bullet">
/// <item>on attach or restore, loads the whole table (rules and a first chunk of elements in one transaction; a big
/// table's remaining elements in further transactions of at most <see cref="SandboxRuleset.ElementsPerTransaction"/>);</item>
/// <item>on a change, commits the element delta to each sandbox on the network, one transaction per namespace,
/// through a netlink socket kept per sandbox (<see cref="NftElementWriter"/>); the kernel table is never listed;</item>
/// <item>after a failed commit, marks the sandbox for a full reload (<see cref="ResyncDirty"/>), and reloads all of
/// them on a slow timer (<see cref="ResyncAll"/>) in case someone else changed a table.</item>
/// </list>
/// Thread-safe. Deltas and registrations are serialized by one lock, held while a delta fans out (element commits
/// of ~0.05–0.3 ms per sandbox); full loads run outside it, and a sandbox loaded from an older snapshot catches up
/// with the difference between that snapshot and the current state.
/// </summary>
public sealed class SandboxTables : IDisposable
{
    private sealed class Sandbox(string key, string path, (ulong, ulong) nsId, IReadOnlyCollection<string> networks,
        IReadOnlyDictionary<string, IPAddress> addresses, SandboxRules rules)
    {
        public string Key { get; } = key;
        public string Path { get; } = path;
        public (ulong, ulong) NsId { get; } = nsId;
        public IReadOnlyCollection<string> Networks { get; set; } = networks;
        // The sandbox's own address per network: the only client addresses its affinity entries can have.
        public IReadOnlyDictionary<string, IPAddress> Addresses { get; set; } = addresses;
        public SandboxRules Rules { get; set; } = rules;
        public NftElementWriter? Writer { get; set; }
        public bool Loading { get; set; }
        public bool Dirty { get; set; }
        public readonly object Kernel = new();   // one transaction at a time per namespace
    }

    private readonly ILogger _log;
    private readonly LbMetrics _metrics;
    private readonly object _gate = new();
    private readonly Dictionary<string, Sandbox> _sandboxes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Sandbox>> _byNetwork = new(StringComparer.Ordinal);
    // network → service → its elements on that network (the desired state; LbElement is a value).
    private readonly Dictionary<string, Dictionary<string, IReadOnlyCollection<LbElement>>> _desired = new(StringComparer.Ordinal);
    private readonly NftElementBatch _batch = new();   // under _gate
    private bool _disposed;

    public SandboxTables(LbMetrics metrics, ILogger log)
    {
        _metrics = metrics;
        _log = log;
    }

    /// <summary>Sandboxes with a table.</summary>
    public int Count { get { lock (_gate) return _sandboxes.Count; } }

    /// <summary>Sandboxes waiting for a full reload after a failed change.</summary>
    public int DirtyCount { get { lock (_gate) return _sandboxes.Values.Count(s => s.Dirty); } }

    /// <summary>
    /// Sets a service's elements on a network and applies the difference to every sandbox on that network, one
    /// transaction each. An empty collection removes the service from the network. Returns the sandboxes changed.
    /// </summary>
    public int SetService(string network, string service, IReadOnlyCollection<LbElement> elements)
    {
        ArgumentNullException.ThrowIfNull(elements);
        lock (_gate)
        {
            if (!_desired.TryGetValue(network, out var services)) _desired[network] = services = new(StringComparer.Ordinal);
            var before = services.GetValueOrDefault(service) ?? [];
            if (elements.Count == 0) services.Remove(service);
            else services[service] = elements;
            if (services.Count == 0) _desired.Remove(network);
            var delta = ElementDelta.Between(before, elements);
            return delta.IsEmpty ? 0 : FanOut(network, delta);
        }
    }

    /// <summary>The desired elements of a network now (a copy; for tests and resync).</summary>
    public IReadOnlyCollection<LbElement> DesiredOf(string network)
    {
        lock (_gate) return DesiredOfLocked([network]);
    }

    /// <summary>
    /// Installs (or re-asserts) the sandbox's table: <paramref name="rules"/> from the redirect owner and the VIP
    /// elements of <paramref name="networks"/>, the rules and first chunk in one transaction. Idempotent.
    /// </summary>
    /// <exception cref="SandboxTableException">A transaction failed; the sandbox stays registered and marked for resync
    /// if the first one succeeded, and is unregistered if not.</exception>
    public void Attach(NetNs ns, string key, IReadOnlyCollection<string> networks, IReadOnlyDictionary<string, IPAddress> addresses, SandboxRules rules)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentException.ThrowIfNullOrEmpty(key);
        Sandbox sandbox;
        List<LbElement> snapshot;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_sandboxes.TryGetValue(key, out var existing) && existing.NsId != ns.Id) ForgetLocked(existing);
            if (!_sandboxes.TryGetValue(key, out sandbox!))
            {
                sandbox = new Sandbox(key, ns.Path, ns.Id, networks, addresses, rules);
                _sandboxes[key] = sandbox;
            }
            else
            {
                Unindex(sandbox);
                sandbox.Networks = networks;
                sandbox.Addresses = addresses;
                sandbox.Rules = rules;
            }
            foreach (var n in networks)
            {
                if (!_byNetwork.TryGetValue(n, out var set)) _byNetwork[n] = set = [];
                set.Add(sandbox);
            }
            sandbox.Loading = true;
            snapshot = DesiredOfLocked(networks);
        }
        try
        {
            Load(ns, sandbox, snapshot);
        }
        catch (SandboxTableException)
        {
            lock (_gate)
            {
                sandbox.Loading = false;
                sandbox.Dirty = true;
            }
            throw;
        }
        CatchUp(sandbox, snapshot);
    }

    /// <summary>Removes the sandbox's table (if its namespace still exists and is the same one) and forgets it.</summary>
    public bool Detach(string key)
    {
        Sandbox? sandbox;
        lock (_gate)
        {
            if (!_sandboxes.TryGetValue(key, out sandbox)) return false;
            ForgetLocked(sandbox);
        }
        try
        {
            using var ns = NetNs.Open(sandbox.Path);
            if (ns.Id == sandbox.NsId) lock (sandbox.Kernel) Nftables.Apply(ns, SandboxRuleset.Removal);
        }
        catch (NamespaceNotFoundException)
        {
            // The sandbox is gone, and its table with it.
        }
        catch (NftException e)
        {
            _log.LogWarning("LB detach of {Sandbox}: removing table {Table} failed: {Error}", key, SandboxRuleset.TableName, e.NftMessage);
        }
        return true;
    }

    /// <summary>Reloads every sandbox marked after a failed change. Returns how many were reloaded.</summary>
    public int ResyncDirty() => Resync(onlyDirty: true);

    /// <summary>Reloads every sandbox's whole table (the slow periodic resync). Returns how many were reloaded.</summary>
    public int ResyncAll() => Resync(onlyDirty: false);

    private int Resync(bool onlyDirty)
    {
        List<Sandbox> todo;
        lock (_gate) todo = _sandboxes.Values.Where(s => !s.Loading && (!onlyDirty || s.Dirty)).ToList();
        var done = 0;
        foreach (var sandbox in todo)
        {
            List<LbElement> snapshot;
            lock (_gate)
            {
                if (!_sandboxes.ContainsKey(sandbox.Key) || sandbox.Loading) continue;
                sandbox.Loading = true;
                sandbox.Dirty = false;
                snapshot = DesiredOfLocked(sandbox.Networks);
            }
            try
            {
                using var ns = NetNs.TryOpen(sandbox.Path);
                if (ns is null || ns.Id != sandbox.NsId)
                {
                    lock (_gate) ForgetLocked(sandbox);   // the namespace went away under us: its table with it
                    continue;
                }
                Load(ns, sandbox, snapshot);
                CatchUp(sandbox, snapshot);
                done++;
            }
            catch (Exception e) when (e is SandboxTableException or NamespaceException)
            {
                _log.LogWarning("LB resync of {Sandbox} failed, retried later: {Error}", sandbox.Key, e.Message);
                lock (_gate)
                {
                    sandbox.Loading = false;
                    sandbox.Dirty = true;
                }
            }
        }
        return done;
    }

    // Outside _gate. Replaces the table: the rules (and, for a small table, its elements) in one transaction; a big
    // table's elements follow through the element writer, ElementsPerTransaction per transaction, slots before tiers
    // before VIPs so a VIP only starts matching once its slots are there. Encoding elements ourselves is several
    // times faster than nft parsing them (10k x 10: 3.6 s as text under load).
    private void Load(NetNs ns, Sandbox sandbox, List<LbElement> elements)
    {
        lock (sandbox.Kernel)
        {
            try
            {
                var small = elements.Count <= SandboxRuleset.ElementsPerTransaction;
                Nftables.Apply(ns, SandboxRuleset.Skeleton(sandbox.Rules) + (small ? string.Concat(SandboxRuleset.ElementChunks(elements)) : ""));
                sandbox.Writer ??= NftElementWriter.Open(ns);
                if (small) return;
                elements.Sort(static (a, b) => LoadOrder(a).CompareTo(LoadOrder(b)));
                var batch = new NftElementBatch();
                Span<byte> key = stackalloc byte[16];
                Span<byte> data = stackalloc byte[8];
                foreach (var e in elements)
                {
                    batch.Add(e.SetName, key[..e.WriteKey(key)], data[..e.WriteData(data)]);
                    if (batch.Count < SandboxRuleset.ElementsPerTransaction) continue;
                    sandbox.Writer.Commit(SandboxRuleset.TableName, batch);
                    batch.Clear();
                }
                sandbox.Writer.Commit(SandboxRuleset.TableName, batch);
            }
            catch (Exception e) when (e is NftException or NamespaceException or IOException or TimeoutException)
            {
                _metrics.ApplyFailed();
                throw new SandboxTableException($"LB table for sandbox {sandbox.Key} ({ns}): {(e is NftException n ? n.NftMessage : e.Message)}", e);
            }
        }
    }

    private static int LoadOrder(LbElement e) => e.Set switch { LbSet.Backend => 0, LbSet.Affinity => 1, LbSet.Tier => 2, _ => 3 };

    // After a load from `snapshot`: applies what changed meanwhile, and lets deltas reach the sandbox again.
    private void CatchUp(Sandbox sandbox, List<LbElement> snapshot)
    {
        lock (_gate)
        {
            sandbox.Loading = false;
            if (!_sandboxes.ContainsKey(sandbox.Key)) return;
            var delta = ElementDelta.Between(snapshot, DesiredOfLocked(sandbox.Networks));
            if (!delta.IsEmpty) Commit(sandbox, delta);
        }
    }

    // Under _gate.
    private int FanOut(string network, ElementDelta delta)
    {
        if (!_byNetwork.TryGetValue(network, out var sandboxes)) return 0;
        var started = Stopwatch.GetTimestamp();
        var changed = 0;
        foreach (var sandbox in sandboxes)
        {
            // A sandbox being loaded gets this change from its catch-up; a dirty one from its resync.
            if (sandbox.Loading || sandbox.Dirty) continue;
            if (Commit(sandbox, delta, network)) changed++;
        }
        _metrics.Synced(Stopwatch.GetElapsedTime(started));
        return changed;
    }

    // Under _gate. One transaction in the sandbox's namespace; a failure marks it for a full reload.
    private bool Commit(Sandbox sandbox, ElementDelta delta, string? network = null)
    {
        if (sandbox.Writer is not { } writer) return false;
        var batch = _batch;
        batch.Clear();
        Span<byte> key = stackalloc byte[16];
        Span<byte> data = stackalloc byte[8];
        foreach (var e in delta.Deletes) batch.Delete(e.SetName, key[..e.WriteKey(key)]);
        foreach (var e in delta.Adds) batch.Add(e.SetName, key[..e.WriteKey(key)], data[..e.WriteData(data)]);
        ForgetAffinityOfRemovedBackends(sandbox, delta, network, batch);
        try
        {
            lock (sandbox.Kernel) writer.Commit(SandboxRuleset.TableName, batch);
            return true;
        }
        catch (Exception e) when (e is NftException or IOException or TimeoutException)
        {
            sandbox.Dirty = true;
            _metrics.ApplyFailed();
            _log.LogWarning("LB change in sandbox {Sandbox} failed, full resync follows: {Error}", sandbox.Key, e.Message);
            return false;
        }
    }

    /// <summary>
    /// A client kept on a backend that left would keep being sent to it until the entry times out: delete this
    /// sandbox's affinity entries for the VIP ports that lost a backend. The sandbox's own addresses are the only
    /// client addresses (DNAT happens on its output hook), so the keys are known without reading the kernel; entries
    /// that do not exist are skipped by the kernel (destroy).
    /// </summary>
    private static void ForgetAffinityOfRemovedBackends(Sandbox sandbox, ElementDelta delta, string? network, NftElementBatch batch)
    {
        HashSet<(VipPort, IPAddress)>? kept = null;
        HashSet<VipPort>? lost = null;
        foreach (var e in delta.Adds)
            if (e.Set == LbSet.Backend) (kept ??= []).Add((e.Port, e.Backend!));
        foreach (var e in delta.Deletes)
            if (e.Set == LbSet.Backend && !(kept?.Contains((e.Port, e.Backend!)) ?? false) && !(lost?.Contains(e.Port) ?? false))
                (lost ??= []).Add(e.Port);
        if (lost is null) return;
        Span<byte> key = stackalloc byte[16];
        var clients = network is not null && sandbox.Addresses.TryGetValue(network, out var a) ? [a] : sandbox.Addresses.Values;
        foreach (var port in lost)
            foreach (var client in clients)
            {
                key.Clear();
                client.TryWriteBytes(key, out _);
                port.Vip.TryWriteBytes(key[4..], out _);
                key[8] = port.Protocol;
                System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(key[12..], port.Port);
                batch.Destroy(SandboxRuleset.AffinityMap, key);
            }
    }

    private List<LbElement> DesiredOfLocked(IEnumerable<string> networks)
    {
        var all = new List<LbElement>();
        foreach (var n in networks)
            if (_desired.TryGetValue(n, out var services))
                foreach (var elements in services.Values) all.AddRange(elements);
        return all;
    }

    private void ForgetLocked(Sandbox sandbox)
    {
        _sandboxes.Remove(sandbox.Key);
        Unindex(sandbox);
        sandbox.Writer?.Dispose();
        sandbox.Writer = null;
    }

    private void Unindex(Sandbox sandbox)
    {
        foreach (var n in sandbox.Networks)
            if (_byNetwork.TryGetValue(n, out var set) && set.Remove(sandbox) && set.Count == 0) _byNetwork.Remove(n);
    }

    /// <summary>Closes every kept socket but leaves the tables: a restarted agent reloads over them.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var s in _sandboxes.Values) s.Writer?.Dispose();
            _sandboxes.Clear();
            _byNetwork.Clear();
        }
    }
}
