using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Discovery.Tests.Agent;

namespace Discovery.Tests.Cni;

/// <summary>Execs the built `discovery` binary as podman does a CNI plugin: CNI_* environment, config on stdin.</summary>
public static class CniExec
{
    public sealed record Outcome(int Exit, string Stdout, string Stderr)
    {
        public JsonElement Json => JsonDocument.Parse(Stdout).RootElement.Clone();
        public int? Code => Exit == 0 ? null : Json.GetProperty("code").GetInt32();
    }

    /// <param name="args">CNI_ARGS as podman writes it.</param>
    public static Outcome Run(string command, string containerId, string netns, string stdin, string args = "", string ifname = "eth0")
        => Run(new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command, ["CNI_CONTAINERID"] = containerId, ["CNI_NETNS"] = netns, ["CNI_IFNAME"] = ifname,
            ["CNI_ARGS"] = args, ["CNI_PATH"] = "/opt/cni/bin",
        }, Encoding.UTF8.GetBytes(stdin));

    public static Outcome Run(IDictionary<string, string> env, byte[] stdin)
    {
        var psi = new ProcessStartInfo(Binary.Path)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        // Only what podman passes: the test's own DISCOVERY_API_SOCKET must not decide where the plugin goes.
        psi.Environment.Remove("DISCOVERY_API_SOCKET");
        foreach (var (k, v) in env) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            p.StandardInput.BaseStream.Write(stdin);
            p.StandardInput.Close();
        }
        catch (IOException) { } // the plugin may refuse before reading all of a huge stdin; its answer is what counts
        if (!p.WaitForExit(60_000)) { p.Kill(true); throw new TimeoutException($"plugin {env["CNI_COMMAND"]} ran over 60 s"); }
        return new Outcome(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The network configuration libcni passes for a conflist written by `discovery cni install`.</summary>
    public static string Config(string network, string socket, string? runtimeConfig = null, string? extra = null) =>
        "{\"cniVersion\":\"1.0.0\",\"name\":\"" + network + "\",\"type\":\"discovery\",\"agentSocket\":\"" + socket
        + "\",\"capabilities\":{\"aliases\":true,\"portMappings\":true,\"ips\":true}"
        + (extra is null ? "" : "," + extra) + (runtimeConfig is null ? "" : ",\"runtimeConfig\":" + runtimeConfig) + "}";

    /// <summary>A container id as podman makes them (64 hex).</summary>
    public static string NewContainerId() => Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant() + Convert.ToHexString(Guid.NewGuid().ToByteArray()).ToLowerInvariant();
}
