using Discovery.Daemon.Agent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Discovery.Daemon.Hosting;

/// <summary>The sandboxes' resolvers: restored for every attached sandbox at start (one that fails is logged and
/// counted, the others are restored); the listeners close when the resolver is disposed with the host.</summary>
public sealed class SandboxDnsService(AttachFlow attachments, Discovery.Resolver.DnsService dns, ILogger<SandboxDnsService> log) : IHostedService
{
    public async Task StartAsync(CancellationToken ct)
    {
        log.LogInformation("DNS upstreams: {Upstreams}", string.Join(", ", dns.Upstreams));
        await attachments.RestoreAllAsync(ct);
    }

    public Task StopAsync(CancellationToken ct) => Task.CompletedTask;
}
