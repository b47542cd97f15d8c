using System.Diagnostics;
using Discovery.Testing;
using Discovery.Tests.Agent;
using Discovery.Tests.Lab;

namespace Discovery.Tests.Ops;

/// <summary>
/// A real upstream for one lab host's forwarder: knotd serving <see cref="Zone"/> on 127.0.0.1:9 inside that host's
/// namespace, the address every lab agent forwards to (LabCluster's --dns-upstream), so forwarded queries on that
/// host are answered and cached while the other hosts' upstream still refuses. Dispose stops knotd.
/// </summary>
public sealed class LabDnsUpstream : IDisposable
{
    public const string Zone = "upstream.test";
    public const string Name = "www." + Zone;
    public const string Address = "198.18.9.1";

    private readonly Process _knot;
    private readonly string _dir;

    public LabDnsUpstream(LabCluster lab, int host)
    {
        _dir = Path.Combine(lab.Dir, $"knot-h{host}");
        Directory.CreateDirectory(_dir);
        var conf = Support.KnotConfig.Write(_dir, Zone, "127.0.0.1@9",
        [
            $"$ORIGIN {Zone}.", "$TTL 300",
            $"@ SOA ns.{Zone}. hostmaster.{Zone}. 1 3600 600 86400 60", $"@ NS ns.{Zone}.", $"ns A {Address}", $"www A {Address}",
        ]);
        var ns = lab.HostNs(host);
        _knot = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", ns, "knotd", "-c", conf])
        { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var answers = Eventually.TrueBlocking(() =>
        {
            if (_knot.HasExited) throw new InvalidOperationException("knotd exited: " + _knot.StandardError.ReadToEnd());
            return Sh.Try("ip", "netns", "exec", ns, "dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", "-p", "9", Name).Out.Trim() == Address;
        }, TimeSpan.FromSeconds(10));
        if (!answers) { Dispose(); throw new TimeoutException($"knotd in {ns} did not answer {Name} within 10 s"); }
    }

    public void Dispose()
    {
        if (!_knot.HasExited)
        {
            _knot.Kill(entireProcessTree: true);
            _knot.WaitForExit(10_000);
        }
        _knot.Dispose();
    }
}
