namespace Discovery.Tests.Support;

/// <summary>The files a test's knotd needs: one zone file and a knot.conf serving it from <c>dir</c>. One place for the
/// config text, shared by the resolver lab's upstream and the ops tests' lab upstream.</summary>
public static class KnotConfig
{
    /// <summary>Writes DIR/zone and DIR/knot.conf; returns the config's path. <paramref name="udpMaxPayload"/> caps UDP
    /// answers (null: knot's default).</summary>
    public static string Write(string dir, string zone, string listen, IEnumerable<string> zoneLines, int? udpMaxPayload = null)
    {
        File.WriteAllLines(Path.Combine(dir, "zone"), zoneLines);
        var payload = udpMaxPayload is { } p ? $"\n    udp-max-payload: {p}" : "";
        var path = Path.Combine(dir, "knot.conf");
        File.WriteAllText(path, $"""
            server:
                rundir: "{dir}"
                listen: {listen}{payload}
            log:
              - target: stderr
                any: warning
            database:
                storage: "{dir}"
            zone:
              - domain: {zone}
                file: "{dir}/zone"
                storage: "{dir}"
            """);
        return path;
    }
}
