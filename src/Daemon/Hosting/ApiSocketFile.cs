using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Discovery.Daemon.Hosting;

/// <summary>
/// The API socket's file: a stale one of a dead agent is removed before Kestrel listens (the agent lock proved none
/// runs), the socket gets mode 0660 once listening, and the file goes when the agent stops.
/// </summary>
public sealed class ApiSocketFile(IOptions<AgentOptions> options, IHostApplicationLifetime lifetime) : IHostedService
{
    private string Path => options.Value.ApiSocket;

    public Task StartAsync(CancellationToken ct)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path))!);
        if (File.Exists(Path)) File.Delete(Path);
        // Kestrel starts after every part of the agent: the socket exists once the host has started.
        lifetime.ApplicationStarted.Register(() =>
            File.SetUnixFileMode(Path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken ct)
    {
        if (File.Exists(Path)) File.Delete(Path);
        return Task.CompletedTask;
    }
}
