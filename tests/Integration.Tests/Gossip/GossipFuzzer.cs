using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Discovery.Platform;

namespace Discovery.Tests.Gossip;

/// <summary>What one fuzz run sent, and the last inputs (hex) for a failure message.</summary>
public sealed record FuzzRun(int Seed, long Packets, long Streams, long StreamErrors, TimeSpan Elapsed, IReadOnlyList<string> LastInputs)
{
    public override string ToString() =>
        $"seed {Seed}: {Packets} datagrams and {Streams} streams ({StreamErrors} cut off by the agent) in {Elapsed.TotalSeconds:0.#} s; last inputs:\n  " + string.Join("\n  ", LastInputs);
}

/// <summary>
/// Sends <see cref="HostileGossip"/> at a live agent over UDP and TCP from sockets in its namespace, paced by a timer
/// (about 2,000 datagrams and 50 streams a second), bounded in count and time, and stops early if the agent exits.
/// Every second a <see cref="LivenessProbe"/> ping checks the agent still answers.
/// </summary>
public static class GossipFuzzer
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(10);
    private const int PacketsPerTick = 20;
    private const int TicksPerStream = 2;

    public static async Task<FuzzRun> RunAsync(GossipPair.Host victim, IPEndPoint target, int seed, TimeSpan duration, long maxPackets, LivenessProbe probe)
    {
        var hostile = new HostileGossip(seed, victim.Node, target);
        using var ns = victim.OpenNs();
        using var udp = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp));
        var last = new Queue<string>();
        void Remember(string kind, byte[] input)
        {
            last.Enqueue($"{kind} {Convert.ToHexString(input.AsSpan(0, Math.Min(input.Length, 256)))}{(input.Length > 256 ? "…" : "")}");
            if (last.Count > 5) last.Dequeue();
        }
        long packets = 0, streams = 0, streamErrors = 0, ticks = 0;
        Task<bool>? stream = null;
        Task<bool>? ping = null;
        var clock = Stopwatch.StartNew();
        using var timer = new PeriodicTimer(Tick);
        while (clock.Elapsed < duration && packets < maxPackets && !victim.Exited && await timer.WaitForNextTickAsync())
        {
            ticks++;
            for (int i = 0; i < PacketsPerTick; i++, packets++)
            {
                var packet = hostile.NextPacket();
                Remember("udp", packet);
                try { udp.SendTo(packet, SocketFlags.None, target); }
                catch (SocketException) { /* ICMP from an earlier send, or a full buffer: the next one goes */ }
            }
            if (ticks % TicksPerStream == 0 && stream is null or { IsCompleted: true })
            {
                if (stream is { Result: false }) streamErrors++;
                var bytes = hostile.NextStream();
                Remember("tcp", bytes);
                streams++;
                stream = SendStreamAsync(ns, target, bytes);
            }
            if (ping is { IsCompleted: true, Result: false } && !victim.Exited)
                throw new InvalidOperationException($"agent stopped answering pings during the fuzz run; {new FuzzRun(seed, packets, streams, streamErrors, clock.Elapsed, [.. last])}");
            if (ticks % 100 == 0 && ping is null or { IsCompleted: true }) ping = probe.AnsweredAsync(TimeSpan.FromSeconds(10));
        }
        if (stream is not null && !await stream) streamErrors++;
        return new FuzzRun(seed, packets, streams, streamErrors, clock.Elapsed, [.. last]);
    }

    /// <summary>One stream: connect, write, half-close, read what comes back. False if the agent cut it off.</summary>
    private static async Task<bool> SendStreamAsync(NetNs ns, IPEndPoint target, byte[] bytes)
    {
        using var socket = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
        try
        {
            await socket.ConnectAsync(target, timeout.Token);
            await socket.SendAsync(bytes, SocketFlags.None, timeout.Token);
            socket.Shutdown(SocketShutdown.Send);
            var buffer = new byte[4096];
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0) { }
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }
}
