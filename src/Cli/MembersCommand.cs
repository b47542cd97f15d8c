using System.CommandLine;
using Discovery.Api;

namespace Discovery.Cli;

/// <summary>`discovery members [--json]`.</summary>
public static class MembersCommand
{
    public static Command Build()
    {
        var cmd = new Command("members", "List the gossip members this agent sees (discovery agents and serf nodes).");
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        cmd.Add(json);
        cmd.SetAction(pr => CommandTree.Call(pr, c =>
        {
            var members = c.Get<List<MemberView>>("/v1/members");
            if (pr.GetValue(json)) Output.Json(members, ApiJsonContext.Default.ListMemberView);
            else Output.Table(["NAME", "ADDRESS", "STATUS", "TAGS"],
                members.Select(m => new[] { m.Name, m.Address, m.Status, string.Join(",", m.Tags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={t.Value}")) }));
        }));
        return cmd;
    }
}
