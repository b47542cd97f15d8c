using Discovery.Model;
using Discovery.Overlay;
using Discovery.Platform;
using Discovery.Resolver;
using Discovery.Resolver.Serving;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Agent;

/// <summary>
/// An attach or detach as the API sees it: the overlay part, then the sandbox's resolver at 127.0.0.11, which sees
/// the names of exactly the networks the sandbox is on. If the DNS part fails, the overlay part is undone.
/// </summary>
/// <param name="faultPoint">Test hook ("attach-dns": the DNS step fails); null in normal runs.</param>
public sealed class AttachFlow(OverlayService overlay, DnsService dns, ILogger<AttachFlow> log, Action<string>? faultPoint = null)
{
    /// <summary>A sandbox whose resolver could not be restored after a restart (for discovery_reconcile_errors_total).</summary>
    public event Action<string, Exception>? RestoreFailed;

    /// <summary>An endpoint was attached (raised after the attach succeeded; the health monitor starts its check).</summary>
    public event Action<EndpointRecord>? Attached;

    /// <summary>An endpoint was detached (the health monitor stops its check).</summary>
    public event Action<EndpointRecord>? Detached;

    // Attach and detach of one sandbox on two networks must not interleave their DNS updates.
    private readonly SemaphoreSlim _lock = new(1, 1);

    public async Task<EndpointRecord> AttachAsync(AttachRequest req, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            // An attach is idempotent: the overlay hands back the endpoint that already exists for this namespace and
            // network. Only what this call created may be rolled back; a retry must never cut off a working container.
            var path = OverlayKernel.NormalizeNetnsPath(req.Netns);
            var before = LocalEndpoint(path, req.Network)?.Id;
            var ep = await overlay.AttachAsync(req, ct);
            var created = ep.Id != before;
            try
            {
                faultPoint?.Invoke("attach-dns");
                SyncSandbox(ep.Netns);
            }
            catch (Exception ex) when (ex is SandboxDnsException or Supervision.InjectedFaultException)
            {
                if (!created)
                {
                    log.LogError("DNS for {Netns} failed; its endpoint on {Network} existed before this attach and stays: {Reason}", ep.Netns, ep.Network, ex.Message);
                    throw new OverlayException(OverlayErrorKind.Kernel, $"attach {req.Netns} to {req.Network}: embedded DNS setup failed (the existing endpoint is kept): {ex.Message}", ex);
                }
                log.LogError("DNS for {Netns} failed, undoing the attach to {Network}: {Reason}", ep.Netns, ep.Network, ex.Message);
                await overlay.DetachAsync(new DetachRequest(req.Netns, req.Network), CancellationToken.None);
                SyncSandbox(ep.Netns);
                throw new OverlayException(OverlayErrorKind.Kernel, $"attach {req.Netns} to {req.Network}: embedded DNS setup failed: {ex.Message}", ex);
            }
            Attached?.Invoke(ep);
            return ep;
        }
        finally { _lock.Release(); }
    }

    public async Task<EndpointRecord> DetachAsync(DetachRequest req, CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var ep = await overlay.DetachAsync(req, ct);
            try { SyncSandbox(ep.Netns); }
            catch (SandboxDnsException ex)
            {
                // The endpoint is gone; a resolver left behind is reported, not turned into a failed detach that a retry cannot fix.
                log.LogError("detach of {Netns} from {Network}: DNS clean-up failed: {Reason}", ep.Netns, ep.Network, ex.Message);
            }
            Detached?.Invoke(ep);
            return ep;
        }
        finally { _lock.Release(); }
    }

    /// <summary>
    /// After a restart: every sandbox with local endpoints gets its resolver back (new listeners, new redirect).
    /// Sandboxes are restored <see cref="RestoreParallelism"/> at a time: each one's work runs on its own namespace
    /// thread (sockets, the nft commit, which sleeps in the kernel), so a thousand of them overlap instead of queueing;
    /// each namespace handle is closed once its sandbox is done, so no thread per sandbox remains.
    /// Returns how many sandboxes were restored and how many failed.
    /// </summary>
    public async Task<(int Restored, int Failed)> RestoreAllAsync(CancellationToken ct)
    {
        await _lock.WaitAsync(ct);
        try
        {
            var sandboxes = LocalSandboxes().ToList();
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            int restored = 0, failed = 0;
            var options = new ParallelOptions { MaxDegreeOfParallelism = RestoreParallelism, CancellationToken = ct };
            await Parallel.ForEachAsync(sandboxes, options, (netns, _) =>
            {
                // One sandbox that cannot be restored (its namespace broken, a kernel error) must not keep the others from theirs.
                try
                {
                    SyncSandbox(netns, restoring: true);
                    Interlocked.Increment(ref restored);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Interlocked.Increment(ref failed);
                    log.LogError("cannot restore DNS for {Netns}, skipped: {Reason}", netns, $"{ex.GetType().Name}: {ex.Message}");
                    RestoreFailed?.Invoke(netns, ex);
                }
                return ValueTask.CompletedTask;
            });
            log.LogInformation("DNS restored for {Restored} sandboxes ({Failed} failed) in {Ms:F0} ms, {Parallelism} at a time",
                restored, failed, System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds, RestoreParallelism);
            return (restored, failed);
        }
        finally { _lock.Release(); }
    }

    /// <summary>How many sandboxes a restore sets up at once. The work is mostly waiting on the kernel (namespace
    /// threads, nft commits), so more than one per core pays; a small bound keeps the burst of threads small.</summary>
    public int RestoreParallelism { get; init; } = Math.Clamp(Environment.ProcessorCount * 2, 2, 8);

    private EndpointRecord? LocalEndpoint(string netnsPath, string network) => overlay.LocalEndpoint(netnsPath, network);

    private IEnumerable<string> LocalSandboxes() => overlay.LocalSandboxes();

    /// <summary>Makes the sandbox's DNS match its local endpoints: attached with their networks, or detached if none.</summary>
    private void SyncSandbox(string netnsPath, bool restoring = false)
    {
        // From the index of this node's endpoints by sandbox: O(the sandbox's networks), not O(cluster).
        var networks = overlay.LocalNetworksOf(netnsPath);
        if (networks.Count == 0)
        {
            dns.Detach(netnsPath);
            return;
        }
        // Attach is idempotent and checks the namespace is still the same one: a path reused by a new namespace gets a new resolver.
        using (var sandbox = NetNs.TryOpen(netnsPath) ?? throw new SandboxDnsException($"namespace {netnsPath} vanished"))
        {
            var name = netnsPath.StartsWith(NetNs.RunDir + "/", StringComparison.Ordinal) ? netnsPath[(NetNs.RunDir.Length + 1)..] : null;
            dns.Attach(sandbox, netnsPath, name, networks);
            if (restoring) ForgetOldResolverFlows(sandbox, netnsPath);
        }
    }

    /// <summary>
    /// A restarted agent's resolver listens on new ports and the 127.0.0.11:53 redirect points there, but a client's
    /// existing UDP entry for 127.0.0.11:53 (a resolver library keeps its source port) still leads to the old port
    /// for up to conntrack's UDP timeout (30 s): its queries go unanswered. The redirect DNATs to 127.0.0.11, so the
    /// reply source of those entries is 127.0.0.11 too. A failure leaves the entries to time out; restore goes on.
    /// </summary>
    private void ForgetOldResolverFlows(NetNs sandbox, string netnsPath)
    {
        try
        {
            using var table = ConntrackTable.Open(sandbox);
            var n = table.DeleteBackendFlows(new BackendFlows(ResolverAddress, FlowProtocols.Udp) { Vip = ResolverAddress, VipPort = 53 });
            if (n > 0) log.LogDebug("restore of {Netns}: {Count} UDP conntrack entries to the old resolver port deleted", netnsPath, n);
        }
        catch (ConntrackException ex)
        {
            log.LogWarning("restore of {Netns}: stale UDP entries to 127.0.0.11:53 not deleted, they time out within 30 s: {Reason}", netnsPath, ex.Message);
        }
    }

    private static readonly System.Net.IPAddress ResolverAddress = System.Net.IPAddress.Parse("127.0.0.11");
}
