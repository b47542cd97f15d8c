using System.Net;

namespace Discovery.Resolver;

/// <summary>The parts of resolv.conf(5) the resolver uses.</summary>
public sealed record ResolvConf(IReadOnlyList<IPAddress> Nameservers, IReadOnlyList<string> Search, IReadOnlyList<string> Options)
{
    public static ResolvConf Empty { get; } = new([], [], []);

    /// <summary>Parses resolv.conf text. Unknown lines and bad addresses are ignored, as glibc does.</summary>
    public static ResolvConf Parse(string text)
    {
        var ns = new List<IPAddress>();
        var search = new List<string>();
        var options = new List<string>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Split('#', ';')[0].Trim();
            var parts = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2) continue;
            switch (parts[0])
            {
                case "nameserver":
                    if (IPAddress.TryParse(parts[1].Split('%')[0], out var a)) ns.Add(a);
                    break;
                case "search":
                case "domain": // the last of search/domain wins (resolv.conf(5))
                    search.Clear();
                    search.AddRange(parts.Skip(1));
                    break;
                case "options":
                    options.AddRange(parts.Skip(1));
                    break;
            }
        }
        return new ResolvConf(ns, search, options);
    }

    public static ResolvConf Load(string path) => File.Exists(path) ? Parse(File.ReadAllText(path)) : Empty;

    /// <summary>
    /// Upstreams from the host's configuration. A loopback stub (systemd-resolved at 127.0.0.53) is replaced by the
    /// stub's own upstreams when they are known; otherwise it is kept, since forwarding happens in the host namespace.
    /// </summary>
    public static IReadOnlyList<IPEndPoint> HostUpstreams(string hostPath, string stubUpstreamsPath)
    {
        var host = Load(hostPath);
        var result = new List<IPEndPoint>();
        foreach (var a in host.Nameservers)
        {
            if (IPAddress.IsLoopback(a))
            {
                var behind = Load(stubUpstreamsPath).Nameservers.Where(x => !IPAddress.IsLoopback(x)).ToList();
                if (behind.Count > 0) { result.AddRange(behind.Select(x => new IPEndPoint(x, 53))); continue; }
            }
            result.Add(new IPEndPoint(a, 53));
        }
        return result.DistinctBy(e => e.ToString()).ToList();
    }

    /// <summary>The resolv.conf a sandbox gets: our address, the host's search domains, ndots:0.</summary>
    public static string ForSandbox(IEnumerable<string> search)
    {
        var lines = new List<string> { "# written by discovery: the embedded resolver answers here", "nameserver 127.0.0.11" };
        var s = search.ToList();
        if (s.Count > 0) lines.Add("search " + string.Join(' ', s));
        lines.Add("options ndots:0");
        return string.Join('\n', lines) + "\n";
    }
}
