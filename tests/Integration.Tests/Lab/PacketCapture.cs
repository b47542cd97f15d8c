using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Wire;
using Discovery.Model;

namespace Discovery.Tests.Lab;

/// <summary>
/// tcpdump on an interface in a lab namespace, writing a pcap file that <see cref="Packets"/> reads back with the
/// kernel's timestamps: when a packet passed, independent of when any process (the agent, this test) got the CPU.
/// On a host's underlay link with the gossip port it shows when a catalog change reached the host (<see cref="EntriesIn"/>
/// decodes a datagram with the agent's own packet decoder); in a client sandbox it shows where each new connection's
/// SYN went after the sandbox's DNAT.
/// </summary>
public sealed class PacketCapture : IDisposable
{
    /// <summary>The gossip port of the lab's agents (memberlist's default).</summary>
    public const int GossipPort = 7946;
    private readonly Process _tcpdump;
    private readonly string _file;

    /// <summary>One captured IPv4 TCP or UDP packet.</summary>
    public sealed record Packet(DateTimeOffset At, bool Udp, IPAddress Source, IPAddress Destination, int SourcePort, int DestinationPort, byte[] Payload);

    /// <param name="file">The pcap file (in the lab's directory, removed with it).</param>
    /// <param name="filter">A tcpdump filter expression, as separate words.</param>
    public PacketCapture(string netns, string device, string file, params string[] filter)
    {
        _file = file;
        // -U: each packet is written as it is captured; -Z root: keep the rights to write the file; -s 0: whole packets.
        var psi = new ProcessStartInfo("ip", ["netns", "exec", netns, "tcpdump", "-i", device, "-n", "-U", "-s", "0", "-Z", "root", "-w", _file, .. filter])
        { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        _tcpdump = Process.Start(psi)!;
        var listening = new TaskCompletionSource();
        _tcpdump.ErrorDataReceived += (_, e) => { if (e.Data?.Contains("listening on", StringComparison.Ordinal) == true) listening.TrySetResult(); };
        _tcpdump.BeginErrorReadLine();
        if (!listening.Task.Wait(TimeSpan.FromSeconds(10)))
        {
            Dispose();
            throw new TimeoutException($"tcpdump on {device} in {netns} did not start capturing within 10 s");
        }
    }

    /// <summary>Every packet written so far (a record still being written is left out).</summary>
    public List<Packet> Packets()
    {
        byte[] bytes;
        using (var f = new FileStream(_file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite)) { bytes = new byte[f.Length]; f.ReadExactly(bytes); }
        var packets = new List<Packet>();
        if (bytes.Length < 24 || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != 0xa1b2c3d4) return packets; // pcap, microseconds, little-endian
        if (BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(20)) != 1) throw new InvalidDataException("expected an Ethernet capture");
        for (var at = 24; at + 16 <= bytes.Length;)
        {
            var seconds = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at));
            var micros = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 4));
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8));
            if (at + 16 + length > bytes.Length) break;
            var frame = bytes.AsSpan(at + 16, length);
            at += 16 + length;
            if (frame.Length < 14 + 20 || BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != 0x0800) continue;
            var ip = frame[14..];
            var headerLength = (ip[0] & 0x0F) * 4;
            var totalLength = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(ip[2..]), ip.Length);
            var protocol = ip[9];
            if (protocol is not (6 or 17)) continue;
            var l4 = ip[headerLength..totalLength];
            var payloadOffset = protocol == 17 ? 8 : (l4[12] >> 4) * 4;
            packets.Add(new Packet(DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(micros * 10L), protocol == 17,
                new IPAddress(ip[12..16]), new IPAddress(ip[16..20]), BinaryPrimitives.ReadUInt16BigEndian(l4), BinaryPrimitives.ReadUInt16BigEndian(l4[2..]),
                l4[payloadOffset..].ToArray()));
        }
        return packets;
    }

    /// <summary>The catalog entries a gossip datagram carries (none if it carries none or does not decode).</summary>
    public static List<CatalogEntry> EntriesIn(Packet datagram)
    {
        var visitor = new EntryCollector();
        using var decoder = new PacketDecoder();
        try { decoder.Decode(datagram.Payload, null, visitor); }
        catch (WireFormatException) { return []; }
        return visitor.Entries;
    }

    private sealed class EntryCollector : IPacketVisitor
    {
        public List<CatalogEntry> Entries { get; } = [];

        public void OnMessage(MessageType type, ReadOnlySpan<byte> body)
        {
            if (type != MessageType.User) return;
            if (EntryBatch.IsBatch(body)) Entries.AddRange(EntryBatch.Decode(body).Select(i => i.Entry));
            else if (CatalogCodec.IsEntryMessage(body)) Entries.Add(CatalogCodec.DecodeEntryMessage(body));
        }
    }

    public void Dispose()
    {
        if (!_tcpdump.HasExited)
        {
            _tcpdump.Kill(entireProcessTree: true);
            _tcpdump.WaitForExit(5000);
        }
        _tcpdump.Dispose();
    }
}
