using System.Diagnostics;
using Discovery.Platform;

namespace Discovery.Bench.Lb;

/// <summary>
/// Times from outside how long a load holds the namespace's nf_tables commit lock: while the load runs, a probe
/// thread commits one-element changes (add, then delete, through its own <see cref="NftElementWriter"/> socket) to a
/// tiny table of its own in the same namespace, about once a millisecond. The kernel processes one batch at a time
/// per namespace, so a probe commit that arrives during a big transaction waits for it: the longest probe commit is
/// an upper bound of the longest transaction (plus the machine's scheduling delay, which is printed as the probe's
/// median). It needs nothing from the writer under test, so every writer is measured the same way.
/// </summary>
internal sealed class CommitProbe : IDisposable
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(15);   // bound even if Stop is never called
    private readonly NftElementWriter _writer;
    private readonly string _table;
    private readonly Thread _thread;
    private readonly List<double> _ms = [];
    private volatile bool _stop;
    private Exception? _failure;

    private CommitProbe(NetNs ns, string table)
    {
        _table = table;
        _writer = NftElementWriter.Open(ns);
        _thread = new Thread(Loop) { IsBackground = true, Name = "commit-probe" };
    }

    /// <summary>Creates the probe's table in <paramref name="ns"/> and starts committing; returns once it has committed.</summary>
    public static CommitProbe Start(NetNs ns, string prefix)
    {
        var table = prefix + "probe";
        Tool.Run(ns, TimeSpan.FromSeconds(30), "nft", ["-f", "-"], input: $"add table ip {table}\nadd set ip {table} p {{ type ipv4_addr; }}\n");
        var probe = new CommitProbe(ns, table);
        probe._thread.Start();
        var clock = Stopwatch.StartNew();
        while (probe.Count < 4 && probe._failure is null && clock.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(1);
        if (probe.Count < 4) throw new InvalidOperationException($"the commit probe in {ns} did not commit: {probe._failure?.Message ?? "no progress in 10 s"}");
        return probe;
    }

    private int Count { get { lock (_ms) return _ms.Count; } }

    /// <summary>Stops the probe; returns its commits' longest and median time, and how many it made.</summary>
    public (double MaxMs, double MedianMs, int Commits) Stop()
    {
        _stop = true;
        _thread.Join();
        if (_failure is not null) throw new InvalidOperationException("commit probe failed: " + _failure.Message, _failure);
        lock (_ms) return (_ms.Max(), Stats.Median(_ms), _ms.Count);
    }

    public void Dispose()
    {
        _stop = true;
        if (_thread.IsAlive) _thread.Join();
        _writer.Dispose();
    }

    private void Loop()
    {
        var batch = new NftElementBatch();
        ReadOnlySpan<byte> key = [198, 19, 255, 254];
        var life = Stopwatch.StartNew();
        try
        {
            for (var add = true; !_stop && life.Elapsed < Lifetime; add = !add)
            {
                batch.Clear();
                if (add) batch.Add("p", key);
                else batch.Delete("p", key);
                var clock = Stopwatch.StartNew();
                _writer.Commit(_table, batch);
                var ms = clock.Elapsed.TotalMilliseconds;
                lock (_ms) _ms.Add(ms);
                Thread.Sleep(1);
            }
        }
        catch (Exception e) when (e is NftException or IOException or TimeoutException)
        {
            _failure = e;
        }
    }
}
