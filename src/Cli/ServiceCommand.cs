using System.CommandLine;
using System.Globalization;
using Discovery.Api;

namespace Discovery.Cli;

/// <summary>`discovery service create|update|ls|inspect|rm` and `discovery drain`.</summary>
public static class ServiceCommand
{
    public const int MaxDrainGraceSeconds = 3600;

    public static Command Build()
    {
        var cmd = new Command("service", "Manage services: a name (and a VIP per network) balanced across the tasks that join it with `attach --service`.");
        cmd.Add(Create());
        cmd.Add(Update());
        cmd.Add(List());
        cmd.Add(Inspect());
        cmd.Add(Remove());
        return cmd;
    }

    /// <summary>The options create and update share; update leaves out what is not given.</summary>
    private sealed class Options
    {
        public readonly Argument<string> Name = new("NAME");
        public readonly Option<string[]> Network = new("--network") { Description = "A network of the service (repeatable; at most 16).", AllowMultipleArgumentsPerToken = false };
        public readonly Option<string?> Mode = new("--mode") { Description = "vip (default): a virtual IP per network; dnsrr: the name answers the tasks." };
        public readonly Option<string[]> Publish = new("--publish") { Description = "[NAME=][IP:]PUBLISHED:TARGET[/tcp|udp]: a port published on hosts (repeatable).", AllowMultipleArgumentsPerToken = false };
        public readonly Option<string[]> Port = new("--port") { Description = "[NAME=]TARGET[/tcp|udp]: a port of the tasks reached through the VIP only (repeatable).", AllowMultipleArgumentsPerToken = false };
        public readonly Option<string?> PublishMode = new("--publish-mode") { Description = "ingress (default), host or local." };
        public readonly Option<string?> Affinity = new("--affinity") { Description = "none (default), client-ip or client-ip:SECONDS (default 10800)." };
        public readonly Option<string?> Balance = new("--balance") { Description = "random (default) or consistent." };
        public readonly Option<int?> DrainGrace = new("--drain-grace") { Description = $"Seconds a draining task keeps its connections, 0..{MaxDrainGraceSeconds} (default 0)." };

        public void AddTo(Command cmd)
        {
            cmd.Add(Name);
            foreach (var o in new Option[] { Network, Mode, Publish, Port, PublishMode, Affinity, Balance, DrainGrace }) cmd.Add(o);
        }

        /// <summary>The request; lists that were not given are null (update keeps them).</summary>
        public ServiceRequest Request(ParseResult pr, bool clearPorts)
        {
            var networks = pr.GetValue(Network) is { Length: > 0 } n ? n : null;
            var publish = pr.GetValue(Publish) ?? [];
            var port = pr.GetValue(Port) ?? [];
            IReadOnlyList<ServicePortRequest>? ports = null;
            try
            {
                if (publish.Length + port.Length > 0)
                    ports = [.. publish.Select(ServiceArguments.ParsePublish), .. port.Select(ServiceArguments.ParsePort)];
                if (pr.GetValue(Affinity) is { } a) ServiceArguments.AffinitySeconds(a);
                if (pr.GetValue(Mode) is { } m) ServiceArguments.OneOf(m, "--mode", ServiceArguments.Modes);
                if (pr.GetValue(PublishMode) is { } p) ServiceArguments.OneOf(p, "--publish-mode", ServiceArguments.PublishModes);
                if (pr.GetValue(Balance) is { } b) ServiceArguments.OneOf(b, "--balance", ServiceArguments.Balances);
            }
            catch (ServiceArgumentException ex) { throw new UsageException(ex.Message); }
            if (clearPorts)
            {
                if (ports is not null) throw new UsageException("give --no-ports or --publish/--port, not both");
                ports = [];
            }
            return new ServiceRequest(pr.GetValue(Name)!, networks, pr.GetValue(Mode), ports, pr.GetValue(PublishMode),
                pr.GetValue(Affinity), pr.GetValue(Balance), pr.GetValue(DrainGrace));
        }
    }

    private static Command Create()
    {
        var create = new Command("create", "Create a service; prints it as JSON.");
        var o = new Options();
        o.AddTo(create);
        create.SetAction(pr => CommandTree.Call(pr, c =>
        {
            var req = o.Request(pr, clearPorts: false);
            if (req.Networks is null) throw new UsageException("service create needs at least one --network");
            Output.Json(c.Post<ServiceView>("/v1/services", req), ApiJsonContext.Default.ServiceView);
        }));
        return create;
    }

    private static Command Update()
    {
        var update = new Command("update", "Change a service; options not given keep their value. --network replaces the network list "
            + "(networks that stay keep their VIP); --publish and --port together replace the port list; --no-ports removes every port. Prints it as JSON.");
        var o = new Options();
        var noPorts = new Option<bool>("--no-ports") { Description = "Remove every port." };
        o.AddTo(update);
        update.Add(noPorts);
        update.SetAction(pr => CommandTree.Call(pr, c =>
        {
            var req = o.Request(pr, pr.GetValue(noPorts));
            Output.Json(c.Post<ServiceView>("/v1/services/" + Uri.EscapeDataString(req.Name), req), ApiJsonContext.Default.ServiceView);
        }));
        return update;
    }

    private static Command List()
    {
        var ls = new Command("ls", "List services.");
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        ls.Add(json);
        ls.SetAction(pr => CommandTree.Call(pr, c =>
        {
            var all = c.Get<List<ServiceView>>("/v1/services");
            if (pr.GetValue(json)) Output.Json(all, ApiJsonContext.Default.ListServiceView);
            else Output.Table(["NAME", "MODE", "VIPS", "PORTS", "TASKS"], all.Select(s => new[]
            {
                s.Name, s.Mode,
                s.Networks.Any(n => n.Vip is not null) ? string.Join(",", s.Networks.Where(n => n.Vip is not null).Select(n => $"{n.Network}:{n.Vip}")) : "-",
                s.Ports.Count == 0 ? "-" : string.Join(",", s.Ports.Select(PortText)),
                $"{s.Backends.Count(b => b.State == "ready").ToString(CultureInfo.InvariantCulture)}/{s.Backends.Count.ToString(CultureInfo.InvariantCulture)}",
            }));
        }));
        return ls;
    }

    // As --publish / --port take it, with the name only where it differs from the default.
    private static string PortText(ServicePortView p)
    {
        var name = p.Name == p.Target.ToString(CultureInfo.InvariantCulture) ? "" : p.Name + "=";
        var published = p.Published == 0 ? "" : $"{(p.HostIp is null ? "" : p.HostIp + ":")}{p.Published.ToString(CultureInfo.InvariantCulture)}:";
        return $"{name}{published}{p.Target.ToString(CultureInfo.InvariantCulture)}/{p.Protocol}";
    }

    private static Command Inspect()
    {
        var inspect = new Command("inspect", "Show one service as JSON: VIPs, ports, and every task with its node, address and state (ready, draining, unhealthy).");
        var name = new Argument<string>("NAME");
        inspect.Add(name);
        inspect.SetAction(pr => CommandTree.Call(pr, c =>
            Output.Json(c.Get<ServiceView>("/v1/services/" + Uri.EscapeDataString(pr.GetValue(name)!)), ApiJsonContext.Default.ServiceView)));
        return inspect;
    }

    private static Command Remove()
    {
        var rm = new Command("rm", "Remove a service (its tasks stay attached).");
        var name = new Argument<string>("NAME");
        rm.Add(name);
        rm.SetAction(pr => CommandTree.Call(pr, c =>
        {
            c.Delete("/v1/services/" + Uri.EscapeDataString(pr.GetValue(name)!));
            Console.Out.Write(pr.GetValue(name) + "\n");
        }));
        return rm;
    }

    /// <summary>`discovery drain --netns N --network NET [--undo]`.</summary>
    public static Command Drain()
    {
        var cmd = new Command("drain", "Stop new connections to this host's task in a namespace (existing ones keep working for the service's drain grace); --undo makes it ready again. Prints the endpoint as JSON.");
        var netns = new Option<string>("--netns") { Description = "Namespace name or path.", Required = true };
        var network = new Option<string>("--network") { Description = "Network name.", Required = true };
        var undo = new Option<bool>("--undo") { Description = "Make the task ready again." };
        cmd.Add(netns); cmd.Add(network); cmd.Add(undo);
        cmd.SetAction(pr => CommandTree.Call(pr, c =>
            Output.Json(c.Post<EndpointView>("/v1/drain", new DrainRequest(pr.GetValue(netns)!, pr.GetValue(network)!, pr.GetValue(undo))), ApiJsonContext.Default.EndpointView)));
        return cmd;
    }
}
