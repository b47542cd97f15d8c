using System.Buffers.Binary;
using System.Net;

namespace Discovery.Gossip.Tests.Wire;

/// <summary>One UDP datagram or one reassembled TCP direction from a capture.</summary>
public sealed record CapturedPayload(bool Tcp, IPEndPoint Source, IPEndPoint Destination, byte[] Data, double Time);

/// <summary>A minimal pcap (EN10MB, IPv4) reader for the golden captures: UDP payloads, and TCP payloads joined per direction.</summary>
public static class Pcap
{
    public static string Dir => Path.Combine(FindShared(), "testdata", "memberlist");

    private static string FindShared()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var candidate = Path.Combine(d.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "testdata", "memberlist"))) return candidate;
        }
        return "/work/shared";
    }

    public static List<CapturedPayload> Read(string file)
    {
        var bytes = File.ReadAllBytes(Path.Combine(Dir, file));
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(bytes);
        bool little = magic is 0xa1b2c3d4 or 0xa1b23c4d;
        bool nanos = magic is 0xa1b23c4d or 0x4d3cb2a1;
        uint U32(int o) => little ? BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(o)) : BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(o));
        var result = new List<CapturedPayload>();
        var streams = new Dictionary<(IPEndPoint, IPEndPoint), (List<byte> Data, uint? NextSeq, int Index)>();
        int pos = 24;
        while (pos + 16 <= bytes.Length)
        {
            double ts = U32(pos) + U32(pos + 4) / (nanos ? 1e9 : 1e6);
            int incl = (int)U32(pos + 8);
            var frame = bytes.AsSpan(pos + 16, incl);
            pos += 16 + incl;
            if (frame.Length < 34 || BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) != 0x0800) continue;
            var ip = frame[14..];
            int ihl = (ip[0] & 15) * 4;
            int total = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
            byte proto = ip[9];
            var src = new IPAddress(ip.Slice(12, 4));
            var dst = new IPAddress(ip.Slice(16, 4));
            var l4 = ip[ihl..total];
            ushort sp = BinaryPrimitives.ReadUInt16BigEndian(l4), dp = BinaryPrimitives.ReadUInt16BigEndian(l4[2..]);
            var s = new IPEndPoint(src, sp); var d = new IPEndPoint(dst, dp);
            if (proto == 17)
            {
                result.Add(new CapturedPayload(false, s, d, l4[8..].ToArray(), ts));
            }
            else if (proto == 6)
            {
                uint seq = BinaryPrimitives.ReadUInt32BigEndian(l4[4..]);
                int off = (l4[12] >> 4) * 4;
                var payload = l4[off..];
                var key = (s, d);
                if (!streams.TryGetValue(key, out var st))
                {
                    result.Add(new CapturedPayload(true, s, d, [], ts));
                    st = (new List<byte>(), null, result.Count - 1);
                }
                if (payload.Length > 0 && (st.NextSeq is null || seq == st.NextSeq))
                {
                    st.Data.AddRange(payload.ToArray());
                    st.NextSeq = seq + (uint)payload.Length;
                }
                streams[key] = st;
            }
        }
        foreach (var (_, st) in streams)
            result[st.Index] = result[st.Index] with { Data = st.Data.ToArray() };
        return result.Where(p => p.Data.Length > 0).ToList();
    }
}
