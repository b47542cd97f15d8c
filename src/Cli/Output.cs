using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Discovery.Cli;

/// <summary>What the commands print: the API's JSON as the agent sends it, or an aligned text table.</summary>
public static class Output
{
    public static void Json<T>(T value, JsonTypeInfo<T> type) => Console.Out.Write(JsonSerializer.Serialize(value, type) + "\n");

    public static void Table(string[] header, IEnumerable<string[]> rows)
    {
        var all = new List<string[]> { header };
        all.AddRange(rows);
        var widths = header.Select((_, i) => all.Max(r => r[i].Length)).ToArray();
        var text = new StringBuilder();
        foreach (var r in all) text.Append(string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd()).Append('\n');
        Console.Out.Write(text.ToString());
    }
}
