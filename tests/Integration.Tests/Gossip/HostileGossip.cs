using System.Net;
using Discovery.Fuzz.Gossip;
using Discovery.Gossip.Replication;
using Discovery.Gossip.Wire;
using Discovery.Model;

namespace Discovery.Tests.Gossip;

/// <summary>
/// Makes hostile gossip input for a live agent, deterministically from a seed: mutations of the kept fuzz corpus
/// (golden memberlist captures and encoded messages, fuzz/Gossip/corpus), catalog messages aimed at the victim (entries
/// claiming it as owner with garbage values, Lamport times near 2^64, huge counts, truncations), and each wrapped the
/// ways memberlist wraps: compound, LZW, CRC, an encrypted-looking envelope. Pure: no sockets, no clock.
/// </summary>
public sealed class HostileGossip
{
    private readonly Random _random;
    private readonly string _victim;
    private readonly byte[][] _packets;
    private readonly byte[][] _streams;

    public HostileGossip(int seed, string victim, IPEndPoint victimAt)
    {
        _random = new Random(seed);
        _victim = victim;
        var corpus = Directory.GetFiles(CorpusDir()).Order(StringComparer.Ordinal).Select(f => (Name: Path.GetFileName(f), Data: File.ReadAllBytes(f))).ToList();
        var own = SeedCorpus.Entries(victim, 3);
        var catalog = own.Select(e => CatalogCodec.EncodeEntryMessage(e)).Append(CatalogCodec.EncodeState(own)).ToList();
        _packets = [.. corpus.Where(c => !c.Name.Contains("_tcp_", StringComparison.Ordinal) && !c.Name.StartsWith("stream_", StringComparison.Ordinal)).Select(c => c.Data),
            .. catalog.Select(m => SeedCorpus.UserPacket(m))];
        _streams = [.. corpus.Where(c => c.Name.Contains("_tcp_", StringComparison.Ordinal) || c.Name.StartsWith("stream_", StringComparison.Ordinal)).Select(c => c.Data),
            SeedCorpus.PushPullStream("n9", new IPEndPoint(IPAddress.Parse("198.18.250.9"), 7946), CatalogCodec.EncodeState(own)),
            SeedCorpus.UserStream(catalog[1])];
        VictimAt = victimAt;
    }

    public IPEndPoint VictimAt { get; }

    /// <summary>The kept corpus of fuzz/Gossip, found above the test's directory.</summary>
    public static string CorpusDir()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var corpus = Path.Combine(d.FullName, "fuzz", "Gossip", "corpus");
            if (Directory.Exists(corpus)) return corpus;
        }
        throw new DirectoryNotFoundException("fuzz/Gossip/corpus not found above the test directory");
    }

    /// <summary>
    /// The packet that killed the agent: a user message whose catalog entry (85 bytes in all) claims the victim as
    /// owner of an endpoint and carries 8 bytes that are no EndpointRecord.
    /// </summary>
    public static byte[] HostileOwnEntry(string victim)
    {
        var entry = new CatalogEntry(Tables.Endpoints, new string('a', 64), victim, 1, false, "GARBAGE!"u8.ToArray());
        // The finding's exact shape: the previous release's entry format (the current one packs the hex key tighter).
        return SeedCorpus.UserPacket(CatalogCodec.EncodeEntryMessage(entry, null, EntryFormat.Legacy));
    }

    /// <summary>A compound of an alive and then a dead message for a node whose name is empty.</summary>
    public static byte[] NamelessMemberDies()
    {
        using var alive = new WireBuffer(64);
        new AliveMessage(1, "", [198, 18, 250, 9], 7946, null, [1, 5, 2, 2, 5, 4]).Encode(alive);
        using var dead = new WireBuffer(64);
        new DeadMessage(1, "", "n9").Encode(dead);
        return SeedCorpus.Compound(alive.ToArray(), dead.ToArray());
    }

    /// <summary>One UDP datagram.</summary>
    public byte[] NextPacket()
    {
        byte[] message = _random.Next(3) switch
        {
            0 => SeedCorpus.UserPacket(HostileCatalogMessage()),
            1 => Mutate(Pick(_packets)),
            _ => Pick(_packets),
        };
        // Compound several, sometimes nested; then the envelopes in memberlist's order (compress, CRC, encrypt).
        if (_random.Next(4) == 0)
        {
            var parts = new byte[_random.Next(2, 6)][];
            for (int i = 0; i < parts.Length; i++) parts[i] = i == 0 ? message : _random.Next(2) == 0 ? SeedCorpus.UserPacket(HostileCatalogMessage()) : Pick(_packets);
            message = SeedCorpus.Compound(parts);
        }
        switch (_random.Next(6))
        {
            case 0: message = SeedCorpus.Seal(message, crc: false, null); break;
            case 1: message = SeedCorpus.Seal(message, crc: true, null); break;
            case 2: message = Crc(message); break;
            case 3: message = EncryptedLooking(message.Length); break;
        }
        // Now and then break the envelope itself.
        if (_random.Next(5) == 0) message = Mutate(message);
        return message.Length > 0 ? message : [0];
    }

    /// <summary>One TCP stream message: push-pull (with hostile catalog state), reliable user messages, pings, LZW or garbage.</summary>
    public byte[] NextStream()
    {
        byte[] message = _random.Next(3) switch
        {
            0 => SeedCorpus.PushPullStream(_random.Next(2) == 0 ? "n9" : _victim, new IPEndPoint(IPAddress.Parse("198.18.250.9"), 7946), HostileCatalogMessage(state: true), join: _random.Next(2) == 0),
            1 => SeedCorpus.UserStream(HostileCatalogMessage()),
            _ => Mutate(Pick(_streams)),
        };
        if (_random.Next(3) == 0) message = SeedCorpus.Stream(message, compress: true, null);
        if (_random.Next(6) == 0) message = Mutate(message);
        return message.Length > 0 ? message : [0];
    }

    /// <summary>A catalog entry or state message, valid in framing, hostile in content.</summary>
    public byte[] HostileCatalogMessage(bool state = false)
    {
        if (state || _random.Next(5) == 0)
        {
            switch (_random.Next(4))
            {
                case 0: return HugeCount();
                case 1: return Truncate(CatalogCodec.EncodeState([HostileEntry(), HostileEntry(), HostileEntry()]));
                default: return CatalogCodec.EncodeState(Enumerable.Range(0, _random.Next(1, 20)).Select(_ => HostileEntry()).ToList());
            }
        }
        var entry = HostileEntry();
        byte[] message = _random.Next(3) == 0
            ? CatalogCodec.EncodeEntryMessage(entry, DateTimeOffset.FromUnixTimeMilliseconds(_random.NextInt64(0, 253_402_300_799_999)), RandomFormat())
            : CatalogCodec.EncodeEntryMessage(entry, null, RandomFormat());
        return _random.Next(6) == 0 ? Truncate(message) : message;
    }

    private EntryFormat RandomFormat() => _random.Next(2) == 0 ? EntryFormat.Legacy : EntryFormat.Current;

    private CatalogEntry HostileEntry()
    {
        string table = Pick([Tables.Endpoints, Tables.Networks, Tables.Blocks, Tables.Services, "zz"]);
        string owner = _random.Next(4) == 0 ? "n9" : _victim;
        ulong lamport = _random.Next(4) switch
        {
            0 => ulong.MaxValue - 1 - (ulong)_random.Next(1000),
            1 => (1UL << 63) + (ulong)_random.Next(1000),
            2 => (ulong)_random.NextInt64(),
            _ => (ulong)_random.Next(1, 100),
        };
        string key = table == Tables.Endpoints ? _random.NextInt64().ToString("x64") : "k" + _random.Next(100);
        if (_random.Next(8) == 0) return new CatalogEntry(table, key, owner, lamport, true, ReadOnlyMemory<byte>.Empty);
        byte[] value = _random.Next(4) switch
        {
            0 => Garbage(_random.Next(1, 64)),
            1 => Mutate(RecordCodec.Encode(SeedCorpus.Endpoint(_victim, _random.Next(1, 200)))),
            2 => RecordCodec.Encode(SeedCorpus.Network("x" + _random.Next(100))), // a valid record of the wrong table
            _ => Truncate(RecordCodec.Encode(SeedCorpus.Endpoint(owner, _random.Next(1, 200)))),
        };
        return new CatalogEntry(table, key, owner, lamport, false, value);
    }

    /// <summary>A state message that claims far more entries than it carries.</summary>
    private byte[] HugeCount()
    {
        var b = new List<byte> { CatalogCodec.StateMessage, CatalogCodec.Format };
        ulong count = _random.Next(2) == 0 ? ulong.MaxValue >> _random.Next(1, 40) : (ulong)_random.Next(100, 100_000);
        while (count >= 0x80) { b.Add((byte)(count | 0x80)); count >>= 7; }
        b.Add((byte)count);
        b.AddRange(CatalogCodec.EncodeEntryMessage(HostileEntry()).AsSpan(1).ToArray());
        return [.. b];
    }

    private static byte[] Crc(byte[] message)
    {
        using var b = new WireBuffer(message.Length + CrcPrefix.Size);
        CrcPrefix.Write(message, b);
        return b.ToArray();
    }

    /// <summary>memberlist's encrypted layout (version, 12-byte nonce, ciphertext, 16-byte tag) with no key behind it.</summary>
    private byte[] EncryptedLooking(int length)
    {
        var b = Garbage(1 + 12 + length + 16);
        b[0] = (byte)_random.Next(2);
        return b;
    }

    private byte[] Garbage(int length)
    {
        var b = new byte[length];
        _random.NextBytes(b);
        return b;
    }

    private byte[] Truncate(byte[] data) => data[..(data.Length > 1 ? _random.Next(1, data.Length) : data.Length)];

    /// <summary>Byte edits, bit flips, length extremes, truncation, extension and splicing with another seed.</summary>
    private byte[] Mutate(byte[] original)
    {
        var input = (byte[])original.Clone();
        int edits = _random.Next(1, 6);
        for (int e = 0; e < edits && input.Length > 0; e++)
        {
            switch (_random.Next(7))
            {
                case 0: input[_random.Next(input.Length)] = (byte)_random.Next(256); break;
                case 1: input[_random.Next(input.Length)] ^= (byte)(1 << _random.Next(8)); break;
                case 2: input[_random.Next(input.Length)] = Pick<byte>([0x00, 0x7f, 0x80, 0xff, 0xc0, 0xdf, 0xdb, 0xce]); break;
                case 3: input = Truncate(input); break;
                case 4: input = [.. input, .. Garbage(_random.Next(1, 16))]; break;
                case 5:
                {
                    var other = Pick(_packets);
                    input = [.. input[.._random.Next(input.Length + 1)], .. other[_random.Next(other.Length)..]];
                    break;
                }
                default:
                {
                    int at = _random.Next(input.Length), n = Math.Min(_random.Next(1, 8), input.Length - at);
                    input = [.. input[..at], .. input.AsSpan(at, n), .. input[at..]]; // duplicate a run
                    break;
                }
            }
        }
        return input;
    }

    private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];
}
