using System.CommandLine;
using Discovery.Cli;

// A CNI runtime (podman) execs this binary as a plugin, with CNI_COMMAND set: answer before touching anything else,
// since VERSION runs several times per container.
if (Discovery.Cni.CniPlugin.IsPluginCall()) return Discovery.Cni.CniPlugin.Run();
// `discovery agent …` is the agent's: replace this process with it before doing anything else.
if (AgentExec.IsAgentCommand(args)) return AgentExec.Run(args);
return CommandTree.Build().Parse(args).Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null });
