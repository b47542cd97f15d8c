using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Discovery.Tests.Ops;

/// <summary>
/// ops/grafana/discovery.json as the tests see it: its panels (rows' nested panels included) and their Prometheus
/// queries, and the npm-based schema check in tests/ops/grafana (validate.mjs, installed by install.sh).
/// </summary>
public static class GrafanaDashboard
{
    public sealed record Target(string Panel, string RefId, string Expr);

    public static string Path => OpsFiles.Path("ops", "grafana", "discovery.json");
    private static string CheckDir => OpsFiles.Path("tests", "ops", "grafana");

    public static JsonObject Load() => JsonNode.Parse(File.ReadAllText(Path))!.AsObject();

    /// <summary>Every panel that is not a row, in file order, with the panels of collapsed rows.</summary>
    public static IEnumerable<JsonObject> Panels(JsonObject dashboard)
    {
        foreach (var p in dashboard["panels"]?.AsArray() ?? [])
        {
            var panel = p!.AsObject();
            if ((string?)panel["type"] == "row")
            {
                foreach (var inner in panel["panels"]?.AsArray() ?? []) yield return inner!.AsObject();
            }
            else yield return panel;
        }
    }

    public static IEnumerable<Target> Targets(JsonObject dashboard) =>
        from panel in Panels(dashboard)
        from t in panel["targets"]?.AsArray() ?? []
        select new Target((string?)panel["title"] ?? "(untitled)", (string?)t!["refId"] ?? "?", (string?)t["expr"] ?? "");

    /// <summary>Installs the pinned npm packages if missing, then runs validate.mjs on <paramref name="files"/>.</summary>
    public static (int Exit, string Output) Validate(params string[] files)
    {
        var install = Run("bash", [System.IO.Path.Combine(CheckDir, "install.sh")]);
        if (install.Exit != 0) throw new InvalidOperationException($"tests/ops/grafana/install.sh failed ({install.Exit}): {install.Output}");
        return Run("node", [System.IO.Path.Combine(CheckDir, "validate.mjs"), .. files]);
    }

    // Generating the schema compiles TypeScript declarations: tens of seconds on a loaded machine, so a long limit.
    private static (int Exit, string Output) Run(string file, string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = CheckDir };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        var limit = TimeSpan.FromMinutes(5);
        if (!p.WaitForExit(limit)) { p.Kill(true); throw new TimeoutException($"{file} {string.Join(' ', args)} ran over {limit.TotalMinutes} min"); }
        return (p.ExitCode, stdout.Result + stderr.Result);
    }
}
