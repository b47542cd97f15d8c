using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Agent;

/// <summary>The agent's Kestrel hosts (API socket, metrics port) share one set-up: the agent's loggers, quiet framework logs.</summary>
public static class WebHosts
{
    public static WebApplication Create(Action<KestrelServerOptions> listen, ILoggerProvider logs)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(listen);
        return builder.Build();
    }
}
