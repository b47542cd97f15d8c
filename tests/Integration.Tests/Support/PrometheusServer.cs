using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Discovery.Platform;
using Discovery.Testing;
using Discovery.Tests.Lab;

namespace Discovery.Tests.Support;

/// <summary>One agent's metrics address for <see cref="PrometheusServer"/>, and the `node` label its series get.</summary>
public sealed record ScrapeTarget(string Address, string Node);

/// <summary>
/// A real Prometheus (Debian's 2.42, /usr/bin/prometheus) run as a plain process for a test: a temporary config and
/// storage directory, a free 127.0.0.1 port, scrape interval 1 s, job "discovery", each target labelled node="hN"
/// (as ops/prometheus/prometheus.yml does). Lab agents serve /metrics on their underlay address inside their host
/// namespace, which the test's namespace cannot reach, so Prometheus can run inside a namespace (h1's for the lab) and
/// the queries go there over sockets opened in that namespace. Dispose kills it and deletes the directory.
/// <code>
/// using var prom = await PrometheusServer.StartForLab(lab);      // every target already up
/// int n = await prom.Count("discovery_gossip_members{node=\"h1\"}");
/// </code>
/// </summary>
public sealed class PrometheusServer : IDisposable
{
    public const string Binary = "/usr/bin/prometheus";

    private readonly Process _process;
    private readonly NetNs? _netns;
    private readonly HttpClient _http;
    private readonly StringBuilder _log = new();

    /// <summary>The temporary directory (config, rules, storage); gone after Dispose.</summary>
    public string Dir { get; }

    /// <summary>host:port Prometheus listens on (inside <see cref="NetnsName"/> when it is set).</summary>
    public string Address { get; }

    /// <summary>The namespace Prometheus runs in, or null for the test's own.</summary>
    public string? NetnsName { get; }

    public IReadOnlyList<ScrapeTarget> Targets { get; }

    /// <summary>What Prometheus wrote to stdout and stderr so far (for failure messages).</summary>
    public string Log
    {
        get { lock (_log) return _log.ToString(); }
    }

    private PrometheusServer(string dir, string address, string? netnsName, IReadOnlyList<ScrapeTarget> targets, Process process, NetNs? netns)
    {
        Dir = dir;
        Address = address;
        NetnsName = netnsName;
        Targets = targets;
        _process = process;
        _netns = netns;
        var handler = new SocketsHttpHandler { ConnectCallback = ConnectAsync, PooledConnectionLifetime = TimeSpan.FromSeconds(30) };
        _http = new HttpClient(handler) { BaseAddress = new Uri($"http://{address}/"), Timeout = TimeSpan.FromSeconds(10) };
    }

    /// <summary>Prometheus inside lab host h1's namespace, scraping every lab agent; returns once every target is up.</summary>
    public static async Task<PrometheusServer> StartForLab(LabCluster lab, IEnumerable<string>? ruleFiles = null, TimeSpan? upWithin = null)
    {
        var targets = Enumerable.Range(1, lab.Hosts).Select(i => new ScrapeTarget($"{LabCluster.HostIp(i)}:9653", $"h{i}")).ToList();
        var prom = Start(targets, lab.HostNs(1), ruleFiles);
        try
        {
            await prom.WaitAllTargetsUp(upWithin ?? TimeSpan.FromSeconds(30));
            return prom;
        }
        catch { prom.Dispose(); throw; }
    }

    /// <summary>
    /// Starts Prometheus scraping <paramref name="targets"/> every second, in namespace <paramref name="netns"/> (a name
    /// under /run/netns) or the test's own, with <paramref name="ruleFiles"/> (absolute paths) loaded; returns once
    /// /-/ready answers 200. Targets are not necessarily scraped yet: see <see cref="WaitAllTargetsUp"/>.
    /// </summary>
    public static PrometheusServer Start(IReadOnlyList<ScrapeTarget> targets, string? netns = null, IEnumerable<string>? ruleFiles = null)
    {
        if (!File.Exists(Binary)) throw new FileNotFoundException($"{Binary} not found: scripts/deps.sh installs the prometheus package");
        var dir = Directory.CreateTempSubdirectory("discovery-prom-").FullName;
        NetNs? ns = null;
        Process? process = null;
        try
        {
            ns = netns is null ? null : NetNs.Open(netns);
            var port = FreePort(ns);
            var address = $"127.0.0.1:{port}";
            var config = Path.Combine(dir, "prometheus.yml");
            File.WriteAllText(config, Config(targets, ruleFiles ?? []));

            var psi = new ProcessStartInfo(netns is null ? Binary : "nsenter")
            {
                RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            };
            if (netns is not null) { psi.ArgumentList.Add($"--net={NetNs.RunDir}/{netns}"); psi.ArgumentList.Add(Binary); }
            foreach (var a in new[]
                     {
                         $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(dir, "data")}", $"--web.listen-address={address}",
                         "--log.level=warn",
                     })
                psi.ArgumentList.Add(a);
            process = Process.Start(psi)!;
            var prom = new PrometheusServer(dir, address, netns, targets, process, ns);
            process.OutputDataReceived += (_, e) => prom.Append(e.Data);
            process.ErrorDataReceived += (_, e) => prom.Append(e.Data);
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            try
            {
                if (!Eventually.TrueBlocking(() => process.HasExited || prom.Get("-/ready").Result.Code == 200, TimeSpan.FromSeconds(20)) || process.HasExited)
                    throw new InvalidOperationException($"prometheus did not become ready on {address}: {prom.Log}");
                return prom;
            }
            catch { prom.Dispose(); throw; }
        }
        catch when (process is null)
        {
            ns?.Dispose();
            Directory.Delete(dir, recursive: true);
            throw;
        }
    }

    /// <summary>The prometheus.yml it runs with: one job, every target with its node label, 1 s scrape and rule evaluation.</summary>
    public static string Config(IEnumerable<ScrapeTarget> targets, IEnumerable<string> ruleFiles)
    {
        var sb = new StringBuilder();
        sb.Append("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n");
        var rules = ruleFiles.ToList();
        if (rules.Count > 0)
        {
            sb.Append("rule_files:\n");
            foreach (var r in rules) sb.Append("  - ").Append(JsonSerializer.Serialize(r)).Append('\n');
        }
        sb.Append("scrape_configs:\n  - job_name: discovery\n    static_configs:\n");
        foreach (var t in targets)
            sb.Append("      - targets: [").Append(JsonSerializer.Serialize(t.Address)).Append("]\n        labels: {node: ")
                .Append(JsonSerializer.Serialize(t.Node)).Append("}\n");
        return sb.ToString();
    }

    /// <summary>Waits until /api/v1/targets lists every target with health "up".</summary>
    public async Task WaitAllTargetsUp(TimeSpan limit)
    {
        var last = "";
        if (!await Eventually.True(async () =>
            {
                var (code, body) = await Get("api/v1/targets?state=active");
                if (code != 200) { last = $"HTTP {code}"; return false; }
                using var doc = JsonDocument.Parse(body);
                var health = doc.RootElement.GetProperty("data").GetProperty("activeTargets").EnumerateArray()
                    .ToDictionary(t => t.GetProperty("labels").GetProperty("instance").GetString()!,
                        t => t.GetProperty("health").GetString() + " " + t.GetProperty("lastError").GetString());
                last = string.Join(", ", health.Select(kv => $"{kv.Key}: {kv.Value}"));
                return Targets.All(t => health.TryGetValue(t.Address, out var h) && h.StartsWith("up", StringComparison.Ordinal));
            }, limit))
            throw new TimeoutException($"not every target up within {limit.TotalSeconds} s: {last}");
    }

    /// <summary>The result array of an instant query; throws with Prometheus's error when the query is not valid.</summary>
    public async Task<JsonElement> Query(string expr)
    {
        var (code, body) = await Get("api/v1/query?query=" + Uri.EscapeDataString(expr));
        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement;
        if (code != 200 || root.GetProperty("status").GetString() != "success")
            throw new InvalidOperationException($"query {expr}: HTTP {code}: {(root.TryGetProperty("error", out var e) ? e.GetString() : body)}");
        var data = root.GetProperty("data");
        var result = data.GetProperty("result");
        // A scalar or string result is [time, value], not a list of series: count it as one.
        return data.GetProperty("resultType").GetString() is "vector" or "matrix" ? result.Clone() : JsonDocument.Parse("[0]").RootElement.Clone();
    }

    /// <summary>How many series an instant query returns (0 for a misspelt metric: Prometheus says "success" either way).</summary>
    public async Task<int> Count(string expr) => (await Query(expr)).GetArrayLength();

    /// <summary>Alerts Prometheus currently holds (pending or firing), as (alertname, state, labels).</summary>
    public async Task<List<(string Name, string State, Dictionary<string, string> Labels)>> Alerts()
    {
        var (code, body) = await Get("api/v1/alerts");
        if (code != 200) throw new InvalidOperationException($"api/v1/alerts: HTTP {code}: {body}");
        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("data").GetProperty("alerts").EnumerateArray()
            .Select(a =>
            {
                var labels = a.GetProperty("labels").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "");
                return (labels["alertname"], a.GetProperty("state").GetString() ?? "", labels);
            }).ToList();
    }

    /// <summary>GET on Prometheus's HTTP API; code 0 when it does not answer (yet).</summary>
    public async Task<(int Code, string Body)> Get(string pathAndQuery)
    {
        try
        {
            using var r = await _http.GetAsync(pathAndQuery);
            return ((int)r.StatusCode, await r.Content.ReadAsStringAsync());
        }
        catch (HttpRequestException e) { return (0, e.Message); }
        catch (TaskCanceledException e) { return (0, e.Message); }
    }

    // A socket made inside the namespace stays there; connecting it can then happen on any thread.
    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken ct)
    {
        var socket = _netns is null ? NewSocket() : _netns.Run(NewSocket);
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch { socket.Dispose(); throw; }
    }

    private static Socket NewSocket() => new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };

    // The kernel's pick of a free port in that namespace; released just before Prometheus binds it.
    private static int FreePort(NetNs? ns)
    {
        int Pick()
        {
            using var s = NewSocket();
            s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            return ((IPEndPoint)s.LocalEndPoint!).Port;
        }
        return ns is null ? Pick() : ns.Run(Pick);
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_log) _log.AppendLine(line);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { /* it exited between the check and the kill */ }
        _process.Dispose();
        _http.Dispose();
        _netns?.Dispose();
        if (Directory.Exists(Dir)) Directory.Delete(Dir, recursive: true);
    }
}
