using System.CommandLine;
using Discovery.Api;

namespace Discovery.Cli;

/// <summary>`discovery keys list|install|use|remove`: the gossip keyring.</summary>
public static class KeysCommand
{
    public static Command Build()
    {
        var cmd = new Command("keys", "Manage this agent's gossip keyring (install a key everywhere, then use it, then remove the old one).");
        var list = new Command("list", "List installed keys; the first is the primary.");
        list.SetAction(pr => CommandTree.Call(pr, c => Output.Json(c.Get<KeysView>("/v1/keys"), ApiJsonContext.Default.KeysView)));
        cmd.Add(list);
        foreach (var (verb, help) in new[] { ("install", "Install a key (base64)."), ("use", "Make an installed key the primary."), ("remove", "Remove a key that is not the primary.") })
        {
            var sub = new Command(verb, help);
            var key = new Argument<string>("KEY");
            sub.Add(key);
            sub.SetAction(pr => CommandTree.Call(pr, c =>
                Output.Json(c.Post<KeysView>("/v1/keys/" + verb, new KeyRequest(pr.GetValue(key)!)), ApiJsonContext.Default.KeysView)));
            cmd.Add(sub);
        }
        return cmd;
    }
}
