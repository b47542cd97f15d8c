using System.CommandLine;
using Discovery.Cli;

// `discovery agent …` is the agent's: replace this process with it before doing anything else.
if (AgentExec.IsAgentCommand(args)) return AgentExec.Run(args);
return CommandTree.Build().Parse(args).Invoke(new InvocationConfiguration { ProcessTerminationTimeout = null });
