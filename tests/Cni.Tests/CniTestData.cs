namespace Discovery.Tests.Cni;

/// <summary>Calls as podman 4.3 makes them (shared/reference/podman-cni-plugin-sample.log).</summary>
internal static class CniTestData
{
    public const string ContainerId = "249fe6172947b0a0e0ce08fa399bbed3d1ea32e489e38f6b2c7c7dae14a5de8a";
    public const string Netns = "/run/netns/netns-0618de64-9bf8-b018-59e1-cefc86d3ff2b";

    public static Dictionary<string, string> Env(string command = "ADD", string args = "IgnoreUnknown=1;K8S_POD_NAME=c1") => new()
    {
        ["CNI_COMMAND"] = command,
        ["CNI_CONTAINERID"] = ContainerId,
        ["CNI_NETNS"] = Netns,
        ["CNI_IFNAME"] = "eth0",
        ["CNI_ARGS"] = args,
        ["CNI_PATH"] = "/usr/local/libexec/cni:/usr/libexec/cni:/usr/local/lib/cni:/usr/lib/cni:/opt/cni/bin",
    };

    public static Func<string, string?> Lookup(Dictionary<string, string> env) => k => env.TryGetValue(k, out var v) ? v : null;

    public const string AddStdin =
        """{"capabilities":{"aliases":true,"ips":true,"portMappings":true},"cniVersion":"1.0.0","name":"web","runtimeConfig":{"aliases":{"web":["api","249fe6172947"]},"portMappings":[{"hostPort":18080,"containerPort":80,"protocol":"tcp","hostIP":"127.0.0.1"},{"hostPort":5353,"containerPort":53,"protocol":"udp"}]},"someKey":"someValue","type":"discovery"}""";

    public const string DelStdin =
        """{"cniVersion":"1.0.0","name":"web","type":"discovery","prevResult":{"cniVersion":"1.0.0","dns":{},"interfaces":[{"mac":"02:c6:13:00:00:02","name":"eth0","sandbox":"/run/netns/netns-x"}],"ips":[{"address":"198.19.0.2/24","gateway":"198.19.0.1","interface":0}]},"runtimeConfig":{"aliases":{"web":["api","249fe6172947"]}}}""";
}
