using System.Net;
using System.Net.Sockets;
using Discovery.Model;
using Discovery.Overlay;
using Discovery.Platform;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Health;

/// <summary>
/// Runs the health checks of this node's tasks and publishes their verdicts (EndpointRecord.Unhealthy) through the
/// overlay: one catalog write per change of verdict, which gossip carries to every DNS and LB in the cluster.
/// </summary>
/// <remarks>
/// <para><b>One loop, no thread per check.</b> A timer ticks every <see cref="Tick"/>; each tick starts the checks that
/// are due as async I/O on the thread pool. A check still running when it is due again is not started twice (its
/// timeout is half the interval, so that only happens under heavy load).</para>
/// <para><b>Where a check connects from.</b> From the network's overlay namespace, where br0 holds the gateway address
/// on the task's subnet: the probe crosses the bridge and the task's veth, the path the LB's local traffic takes, and
/// it needs only one namespace handle (one worker thread) per network with checks, not one per task. Connecting
/// from inside the task's own namespace would reach the server over loopback (a different path, not what the LB
/// uses) and cost a namespace thread per task. The socket is opened on the namespace's worker thread (a socket keeps
/// the namespace it was created in), then used asynchronously from the pool.</para>
/// </remarks>
public sealed class HealthMonitor : IDisposable
{
    /// <summary>How often due checks are looked for: the added delay of a check is at most this.</summary>
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(200);

    private sealed class Check(EndpointRecord ep, HealthCheckSpec spec)
    {
        public readonly string Id = ep.Id;
        public readonly string Name = ep.Name;
        public readonly string Netns = ep.Netns;
        public readonly string Network = ep.Network;
        public readonly IPAddress Address = ep.Address;
        public readonly HealthCheckSpec Spec = spec;
        // Starts from the gossiped state, so a restart does not flip a task that was unhealthy before it.
        public HealthThreshold Threshold = new(ep.Unhealthy);
        // The verdict in the catalog: differs from Threshold's only until a write succeeds, so a failed write is retried.
        public bool Published = ep.Unhealthy;
        public long DueAt;
        public bool Running;
    }

    private readonly OverlayService _overlay;
    private readonly HealthMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Func<string, NetNs> _openNetwork;
    private readonly object _gate = new();
    private readonly Dictionary<string, Check> _checks = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (NetNs Ns, int Checks)> _namespaces = new(StringComparer.Ordinal);
    private readonly List<Check> _due = [];
    private long _lastFailureLog;

    /// <param name="openNetwork">Opens a network's overlay namespace (tests may give another one).</param>
    public HealthMonitor(OverlayService overlay, HealthMetrics metrics, TimeProvider time, ILogger<HealthMonitor> log, Func<string, NetNs>? openNetwork = null)
    {
        _overlay = overlay;
        _metrics = metrics;
        _time = time;
        _log = log;
        _openNetwork = openNetwork ?? (network => NetNs.Open(overlay.Kernel.Names.NetworkNamespace(network)));
    }

    /// <summary>Local tasks with a check, now.</summary>
    public int Count { get { lock (_gate) return _checks.Count; } }

    /// <summary>Starts checking a local endpoint (after an attach); its first check runs at the next tick.</summary>
    public void Track(EndpointRecord ep, HealthCheckSpec spec)
    {
        lock (_gate)
        {
            if (_checks.ContainsKey(ep.Id)) return;
            _checks[ep.Id] = new Check(ep, spec) { DueAt = _time.GetTimestamp() };
            _namespaces[ep.Network] = _namespaces.TryGetValue(ep.Network, out var ns) ? (ns.Ns, ns.Checks + 1) : (null!, 1);
        }
        _log.LogInformation("health check {Check} every {Interval}s for {Endpoint} ({Address}) on {Network}", spec, spec.IntervalSeconds, ep.Name, ep.Address, ep.Network);
    }

    /// <summary>Stops checking an endpoint (detached, or no longer this node's).</summary>
    public void Untrack(string id)
    {
        NetNs? close = null;
        lock (_gate)
        {
            if (!_checks.Remove(id, out var check)) return;
            var (ns, n) = _namespaces[check.Network];
            if (n > 1) _namespaces[check.Network] = (ns, n - 1);
            else { _namespaces.Remove(check.Network); close = ns; }
        }
        close?.Dispose();
    }

    /// <summary>Every local endpoint whose place holds a check (after a restart): O(local endpoints).</summary>
    public int TrackLocal()
    {
        int n = 0;
        foreach (var netns in _overlay.LocalSandboxes())
            foreach (var network in _overlay.LocalNetworksOf(netns))
                if (_overlay.LocalEndpoint(netns, network) is { } ep && _overlay.HealthCheckOf(ep.Id) is { } spec)
                {
                    Track(ep, spec);
                    n++;
                }
        return n;
    }

    /// <summary>The loop: until cancelled, starts the due checks every tick.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(Tick, _time);
        while (await timer.WaitForNextTickAsync(ct).ConfigureAwait(false))
        {
            long now = _time.GetTimestamp();
            lock (_gate)
            {
                foreach (var c in _checks.Values)
                {
                    if (c.Running || now < c.DueAt) continue;
                    c.Running = true;
                    c.DueAt = now + (long)(c.Spec.IntervalSeconds * (double)_time.TimestampFrequency);
                    _due.Add(c);
                }
            }
            foreach (var c in _due) _ = RunCheckAsync(c, ct);
            _due.Clear();
        }
    }

    private async Task RunCheckAsync(Check c, CancellationToken ct)
    {
        try
        {
            // Detached, or replaced by a new attach of the same namespace: an index lookup, not a scan.
            if (_overlay.LocalEndpoint(c.Netns, c.Network)?.Id != c.Id) { Untrack(c.Id); return; }
            bool ok;
            using (var socket = OpenSocket(c.Network))
                ok = await HealthProbe.RunAsync(socket, c.Address, c.Spec, ct).ConfigureAwait(false);
            _metrics.Checked(ok);
            bool unhealthy;
            lock (_gate)
            {
                c.Threshold.Observe(ok);
                unhealthy = c.Threshold.Unhealthy;
                if (unhealthy == c.Published) return;
            }
            if (!await _overlay.SetUnhealthyAsync(c.Id, c.Netns, c.Network, unhealthy, ct).ConfigureAwait(false)) { Untrack(c.Id); return; }
            lock (_gate) c.Published = unhealthy;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopping.
        }
        catch (Exception e)
        {
            // A check that cannot even start (namespace gone, catalog write failed) is logged, rate limited, and retried next interval.
            _metrics.Checked(false);
            long now = _time.GetTimestamp();
            if (_time.GetElapsedTime(Interlocked.Read(ref _lastFailureLog), now) > TimeSpan.FromSeconds(10))
            {
                Interlocked.Exchange(ref _lastFailureLog, now);
                _log.LogWarning("health check of {Endpoint} on {Network} could not run: {Reason}", c.Name, c.Network, $"{e.GetType().Name}: {e.Message}");
            }
        }
        finally
        {
            lock (_gate) c.Running = false;
        }
    }

    /// <summary>A TCP socket in the network's overlay namespace, opened once per check on that namespace's thread.</summary>
    private Socket OpenSocket(string network)
    {
        NetNs ns;
        lock (_gate)
        {
            if (!_namespaces.TryGetValue(network, out var entry)) throw new InvalidOperationException($"no checks on network {network}");
            if (entry.Ns is null) _namespaces[network] = entry = (_openNetwork(network), entry.Checks);
            ns = entry.Ns;
        }
        return ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var (ns, _) in _namespaces.Values) ns?.Dispose();
            _namespaces.Clear();
            _checks.Clear();
        }
    }
}
