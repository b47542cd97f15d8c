using System.Net.Sockets;
using System.Text.Json;
using Discovery.Api;

namespace Discovery.Cni;

/// <summary>
/// The plugin's shell: reads the call (environment, stdin), runs it against the local agent's API, writes the result
/// or the CNI error JSON on stdout. Exit 0 on success, 1 on error. Nothing else is printed on stdout.
/// </summary>
public static class CniPlugin
{
    /// <summary>The one version this plugin answers in, and writes its results in unless the config asks 1.1.0.</summary>
    public const string Version = "1.0.0";

    /// <summary>VERSION's answer, built once at compile time: no serializer to start for the most frequent call
    /// (a unit test checks it equals the serialized <see cref="CniVersionResult"/>). The built binary answers VERSION
    /// before the runtime starts, from the same bytes in src/Cli/native/cni_version.c (CniVersionTests compares them);
    /// this path answers in tests and under `dotnet run`.</summary>
    public static ReadOnlySpan<byte> VersionAnswer => "{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"1.0.0\",\"1.1.0\"]}\n"u8;

    /// <summary>True when the process was started as a CNI plugin.</summary>
    public static bool IsPluginCall() => Environment.GetEnvironmentVariable(CniEnvironment.CommandVariable) is not null;

    public static int Run() =>
        Run(Environment.GetEnvironmentVariable, Console.OpenStandardInput(), Console.OpenStandardOutput());

    public static int Run(Func<string, string?> env, Stream stdin, Stream stdout)
    {
        var version = Version;
        try
        {
            var call = CniEnvironment.Parse(env);
            // VERSION needs no agent and no stdin: podman calls it several times per container, it must be instant.
            if (call.Command == CniCommandKind.Version)
            {
                stdout.Write(VersionAnswer);
                stdout.Flush();
                return 0;
            }
            var config = NetworkConfig.Parse(ReadBounded(stdin));
            version = config.CniVersion;
            using var agent = new ApiClient(AgentSocket.Resolve(config.AgentSocket));
            switch (call.Command)
            {
                case CniCommandKind.Add:
                    Write(stdout, Add(agent, call, config), CniJsonContext.Default.CniResult);
                    break;
                case CniCommandKind.Del: Del(agent, call, config); break;
                case CniCommandKind.Check: Check(agent, call, config); break;
                case CniCommandKind.Status: Status(agent); break;
                case CniCommandKind.Gc: break; // nothing to collect: DEL removes everything ADD made (libcni 1.1 never calls GC)
            }
            return 0;
        }
        catch (Exception ex) when (Classify(ex) is { } error)
        {
            Write(stdout, new CniErrorResult(version, error.Code, error.Message, error.Details), CniJsonContext.Default.CniErrorResult);
            return 1;
        }
    }

    private static CniResult Add(ApiClient agent, CniEnvironment call, NetworkConfig config)
    {
        var plan = AddPlan.For(call, config);
        var endpoint = agent.Post<EndpointView>("/v1/attach", plan.Attach);
        if (plan.Service is { } service)
        {
            try { Publish(agent, service); }
            catch (ApiException ex) when (ex is not AgentUnreachableException)
            {
                // The runtime calls DEL after a failed ADD, but a container left attached without its ports is worse
                // than none: undo the attach now (if that fails too, DEL still cleans up).
                Ignore404(() => agent.Post<EndpointView>("/v1/detach", new DetachRequest(call.Netns, config.Network)));
                throw;
            }
        }
        var network = agent.Get<NetworkView>("/v1/networks/" + config.Network);
        return CniResultBuilder.Build(config.CniVersion, call.Netns, endpoint, network);
    }

    // Create the container's service, or, when it exists (a retried ADD, or the container's ADD on another discovery
    // network: podman passes the port mappings to every network), update it keeping its other networks.
    private static void Publish(ApiClient agent, ServiceRequest service)
    {
        ServiceView? current = null;
        Ignore404(() => current = agent.Get<ServiceView>("/v1/services/" + service.Name));
        if (current is null) { agent.Post<ServiceView>("/v1/services", service); return; }
        var networks = current.Networks.Select(n => n.Network).Union(service.Networks ?? []).ToList();
        agent.Post<ServiceView>("/v1/services/" + service.Name, service with { Networks = networks });
    }

    // The container's service loses this network; it is removed with its last one.
    private static void Unpublish(ApiClient agent, string service, string network)
    {
        ServiceView? current = null;
        Ignore404(() => current = agent.Get<ServiceView>("/v1/services/" + service));
        if (current is null) return;
        var rest = current.Networks.Select(n => n.Network).Where(n => n != network).ToList();
        if (rest.Count == current.Networks.Count) return;
        if (rest.Count == 0) Ignore404(() => agent.Delete("/v1/services/" + service));
        else Ignore404(() => agent.Post<ServiceView>("/v1/services/" + service, new ServiceRequest(service, rest)));
    }

    /// <summary>DEL: idempotent. What is already gone (container, namespace, network, service) is success.</summary>
    private static void Del(ApiClient agent, CniEnvironment call, NetworkConfig config)
    {
        // A service conflist's containers have no service of their own (ADD refuses -p there); the named service stays.
        if (config.Service is null) Unpublish(agent, AddPlan.ServiceName(call), config.Network);
        var netns = call.Netns.Length > 0 ? call.Netns : config.PrevSandbox ?? FindSandbox(agent, call, config);
        if (netns is null) return;
        Ignore404(() => agent.Post<EndpointView>("/v1/detach", new DetachRequest(netns, config.Network)));
    }

    // Without CNI_NETNS or a prevResult: this host's endpoint on the network that carries the container's name and
    // short id (podman adds the short id to the aliases). One listing of the network; DEL without a namespace is rare.
    private static string? FindSandbox(ApiClient agent, CniEnvironment call, NetworkConfig config)
    {
        List<EndpointView>? endpoints = null;
        Ignore404(() => endpoints = agent.Get<List<EndpointView>>("/v1/endpoints?network=" + config.Network));
        var name = call.Args.PodName ?? call.ShortId;
        return endpoints?.FirstOrDefault(e => e.Netns.Length > 0 && e.Name == name
            && (e.Aliases.Contains(call.ShortId) || name == call.ShortId))?.Netns;
    }

    /// <summary>CHECK: the container's endpoint exists on the network with the interface and address of prevResult
    /// (and, on a service conflist, as a task of the service).</summary>
    private static void Check(ApiClient agent, CniEnvironment call, NetworkConfig config)
    {
        var endpoints = agent.Get<List<EndpointView>>("/v1/endpoints?network=" + config.Network);
        var ep = endpoints.FirstOrDefault(e => e.Netns == call.Netns)
            ?? throw new CniException(CniCode.EndpointMismatch, $"{call.Netns} is not attached to network {config.Network}");
        if (ep.Ifname != call.Ifname)
            throw new CniException(CniCode.EndpointMismatch, $"{call.Netns} is attached to {config.Network} as {ep.Ifname}, not {call.Ifname}");
        if (config.Service is { } service && ep.Service != service)
            throw new CniException(CniCode.EndpointMismatch, $"{call.Netns} on {config.Network} is {(ep.Service is null ? "no task of a service" : "a task of service " + ep.Service)}, not of {service}");
        if (config.PrevAddress is { } prev && prev.Split('/')[0] != ep.Ip)
            throw new CniException(CniCode.EndpointMismatch, $"{call.Netns} has address {ep.Ip} on {config.Network}, the previous result says {Text.Printable(prev)}");
    }

    /// <summary>STATUS (CNI 1.1): ready when the agent answers.</summary>
    private static void Status(ApiClient agent)
    {
        try { agent.Get<InfoView>("/v1/info"); }
        catch (AgentUnreachableException ex) { throw new CniException(CniCode.PluginNotAvailable, ex.Message); }
    }

    private static void Ignore404(Action call, Action? onNotFound = null)
    {
        try { call(); }
        catch (ApiException ex) when (ex.Status == 404) { onNotFound?.Invoke(); }
    }

    private static byte[] ReadBounded(Stream stdin)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int n;
        while ((n = stdin.Read(chunk)) > 0)
        {
            if (buffer.Length + n > NetworkConfig.MaxBytes)
                throw new CniException(CniCode.InvalidNetworkConfig, $"the network configuration is larger than {NetworkConfig.MaxBytes} bytes");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    /// <summary>Every failure as a CNI error: the spec's codes for the call's own faults, 11 when the agent cannot be
    /// reached (the runtime may retry), 100+ with the agent's one line when it refused.</summary>
    public static CniException? Classify(Exception ex) => ex switch
    {
        CniException c => c,
        AgentUnreachableException u => new CniException(CniCode.TryAgainLater, Text.OneLine(u.Message)),
        ApiException a => new CniException(CniCode.ForAgentStatus(a.Status), "agent: " + Text.OneLine(a.Message)),
        IOException or SocketException => new CniException(CniCode.TryAgainLater, $"the agent connection failed: {ex.Message}"),
        _ => new CniException(CniCode.PluginInternal, $"plugin internal error: {ex.GetType().Name}: {ex.Message}"),
    };

    private static void Write<T>(Stream stdout, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(value, type);
        stdout.Write(bytes);
        stdout.WriteByte((byte)'\n');
        stdout.Flush();
    }
}
