using System.CommandLine;
using Discovery.Api;

namespace Discovery.Cli;

/// <summary>`discovery leave`.</summary>
public static class LeaveCommand
{
    public static Command Build()
    {
        var cmd = new Command("leave", "Leave the cluster gracefully (peers delete this node's entries) and stop the agent.");
        cmd.SetAction(pr => CommandTree.Call(pr, c => Output.Json(c.Post<InfoView>("/v1/leave", null), ApiJsonContext.Default.InfoView)));
        return cmd;
    }
}
