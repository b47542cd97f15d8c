using System.Text.Json.Nodes;
using Xunit;
using Xunit.Abstractions;

namespace Discovery.Tests.Ops;

/// <summary>
/// ops/grafana/discovery.json against Grafana's own Dashboard type: the JSON Schema is generated at test time from the
/// pinned npm @grafana/schema by ts-json-schema-generator and checked with ajv (tests/ops/grafana/validate.mjs), and
/// each panel's options against its panel type's own types from the same package. Broken
/// copies of the same file go through the same run, so the check is shown to reject what Grafana's schema rejects.
/// </summary>
public sealed class GrafanaDashboardSchemaTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("graf-schema-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, JsonObject dashboard)
    {
        var file = Path.Combine(_dir, name);
        File.WriteAllText(file, dashboard.ToJsonString());
        return file;
    }

    [Fact]
    public void The_dashboard_matches_Grafanas_Dashboard_schema_and_broken_copies_do_not()
    {
        // A panel id Grafana cannot read, and the export-only key that a "share → export" adds.
        var badId = GrafanaDashboard.Load();
        GrafanaDashboard.Panels(badId).First()["id"] = "one";
        badId["__inputs"] = new JsonArray();
        // A row without its required fields, and a schemaVersion Grafana would migrate on load.
        var badRow = GrafanaDashboard.Load();
        badRow["panels"]!.AsArray()[0]!.AsObject().Remove("collapsed");
        badRow["schemaVersion"] = 36;
        // Panel plugin fields the Dashboard type leaves open, checked against the panel type's own schema.
        var badPanel = GrafanaDashboard.Load();
        var timeseries = GrafanaDashboard.Panels(badPanel).Where(p => (string?)p["type"] == "timeseries").ToList();
        timeseries[0]["options"]!["legend"]!["placment"] = "bottom";
        timeseries[1]["fieldConfig"]!["defaults"]!["custom"]!["lineWidht"] = 2;
        timeseries[2]["type"] = "timeseriez";
        var idFile = Write("bad-id.json", badId);
        var rowFile = Write("bad-row.json", badRow);
        var panelFile = Write("bad-panel.json", badPanel);

        var (exit, text) = GrafanaDashboard.Validate(GrafanaDashboard.Path, idFile, rowFile, panelFile);
        output.WriteLine(text);

        Assert.Equal(1, exit);
        Assert.Contains($"{GrafanaDashboard.Path}: valid (schemaVersion ", text);
        Assert.DoesNotContain($"{GrafanaDashboard.Path}: /", text);
        Assert.Contains($"{idFile}: / must NOT have additional properties: __inputs", text);
        Assert.Matches($"{Regex(idFile)}: /panels/\\d+/id must be number", text);
        Assert.Contains($"{rowFile}: /panels/0 must have required property 'collapsed'", text);
        Assert.Contains($"{rowFile}: /schemaVersion is 36;", text);
        Assert.Matches($"{Regex(panelFile)}: /panels/\\d+/options/legend must NOT have additional properties: placment", text);
        Assert.Matches($"{Regex(panelFile)}: /panels/\\d+/fieldConfig/defaults/custom must NOT have additional properties: lineWidht", text);
        Assert.Matches($"{Regex(panelFile)}: /panels/\\d+/type \"timeseriez\" is not a panel type", text);
    }

    private static string Regex(string s) => System.Text.RegularExpressions.Regex.Escape(s);

    [Fact]
    public void Every_query_reads_the_datasource_and_node_variables_and_panel_ids_are_unique()
    {
        var dashboard = GrafanaDashboard.Load();
        var panels = GrafanaDashboard.Panels(dashboard).ToList();
        var rows = dashboard["panels"]!.AsArray().Where(p => (string?)p!["type"] == "row").ToList();
        var ids = panels.Concat(rows).Select(p => (int)p!["id"]!).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        var variables = dashboard["templating"]!["list"]!.AsArray().Select(v => (string)v!["name"]!).ToList();
        Assert.Equal(["datasource", "node"], variables);
        var targets = GrafanaDashboard.Targets(dashboard).ToList();
        Assert.True(targets.Count >= 40, $"only {targets.Count} queries");
        foreach (var panel in panels)
        {
            Assert.Equal("${datasource}", (string?)panel["datasource"]?["uid"]);
            foreach (var t in panel["targets"]!.AsArray())
                Assert.Equal("${datasource}", (string?)t!["datasource"]?["uid"]);
        }
        // Each selector of each query is narrowed to the chosen nodes, so one host's view never mixes in the others'.
        foreach (var t in targets)
        {
            var selectors = System.Text.RegularExpressions.Regex.Matches(t.Expr, @"\b[a-z_]+\{([^}]*)\}");
            Assert.NotEmpty(selectors);
            foreach (System.Text.RegularExpressions.Match m in selectors)
                Assert.True(m.Groups[1].Value.Contains("node=~\"$node\"", StringComparison.Ordinal), $"{t.Panel} {t.RefId}: {m.Value} ignores $node");
        }
    }
}
