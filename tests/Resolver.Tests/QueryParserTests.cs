using ARSoft.Tools.Net.Dns;
using RecordType = ARSoft.Tools.Net.Dns.RecordType;
using CsCheck;
using Discovery.Resolver.Wire;
using Xunit;

namespace Discovery.Tests.Resolver;

public class QueryParserTests
{
    internal static readonly Gen<string> Label = Gen.Char["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"].Array[1, 24].Select(a => new string(a));
    internal static readonly Gen<string> Name = Label.Array[1, 6].Select(ls => string.Join('.', ls) + ".");
    private static readonly Gen<RecordType> Types = Gen.OneOf<RecordType>(RecordType.A, RecordType.Aaaa, RecordType.Ptr, RecordType.Srv, RecordType.Mx, RecordType.Txt, RecordType.Any, RecordType.Soa);

    [Fact]
    public void Parses_every_field_of_queries_encoded_by_ARSoft()
    {
        Gen.Select(Name, Types, Gen.UShort, Gen.Bool, Gen.Bool, Gen.UShort[0, 8192], Gen.Bool)
            .Sample((name, type, id, edns, dnssecOk, size, cd) =>
            {
                var m = ArSoft.Query(name, type, id, edns, size);
                m.IsCheckingDisabled = cd;
                if (edns) m.IsDnsSecOk = dnssecOk;
                var bytes = ArSoft.Encode(m);
                Span<byte> nameBuf = stackalloc byte[255];
                Assert.Equal(ParseStatus.Ok, QueryParser.Parse(bytes, nameBuf, out var q));
                Assert.Equal(id, q.Id);
                Assert.Equal((ushort)type, q.QType);
                Assert.Equal(1, q.QClass);
                Assert.Equal(cd, q.CheckingDisabled);
                Assert.True(q.RecursionDesired);
                Assert.Equal(name, DnsName.ToDotted(nameBuf[..q.NameLength]));
                Assert.Equal(edns, q.HasEdns);
                Assert.Equal(edns ? Math.Max((int)size, 512) : 512, q.UdpSize);
                Assert.Equal(edns && dnssecOk, q.DnssecOk);
            }, iter: 2000);
    }

    [Fact]
    public void Never_throws_on_random_or_mutated_packets_and_agrees_with_ARSoft_on_the_question()
    {
        var valid = Gen.Select(Name, Types, Gen.Bool).Select((n, t, e) => ArSoft.Encode(ArSoft.Query(n, t, edns: e)));
        var mutated = Gen.Select(valid, Gen.Int[0, 1000], Gen.Byte, Gen.Int[0, 3]).Select((b, pos, val, op) =>
        {
            var copy = b.ToList();
            int p = pos % copy.Count;
            switch (op)
            {
                case 0: copy[p] = val; break;
                case 1: copy.RemoveRange(p, copy.Count - p); break;
                case 2: copy.Insert(p, val); break;
                default: copy[p] ^= (byte)(1 << (val & 7)); break;
            }
            return copy.ToArray();
        });
        var random = Gen.Byte.Array[0, 300];
        Gen.OneOf(mutated, random).Sample(bytes =>
        {
            Span<byte> nameBuf = stackalloc byte[255];
            var status = QueryParser.Parse(bytes, nameBuf, out var q);
            if (status != ParseStatus.Ok) return;
            DnsMessage reference;
            try { reference = ArSoft.Parse(bytes); }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                return; // ARSoft is stricter about rdata contents that the resolver never reads
            }
            Assert.Single(reference.Questions);
            AssertSameName(reference.Questions[0].Name.Labels, nameBuf[..q.NameLength]);
            Assert.Equal((ushort)reference.Questions[0].RecordType, q.QType);
            Assert.Equal(reference.TransactionID, q.Id);
        }, iter: 20000);
    }

    /// <summary>Label by label; bytes outside printable ASCII are only compared by position, since ARSoft renders them its own way.</summary>
    private static void AssertSameName(string[] labels, ReadOnlySpan<byte> wire)
    {
        int pos = 0;
        foreach (var label in labels)
        {
            int n = wire[pos];
            var bytes = wire.Slice(pos + 1, n);
            if (n == label.Length)
                for (int i = 0; i < n; i++)
                    if (bytes[i] is > (byte)' ' and < 0x7F) Assert.Equal(char.ToLowerInvariant(label[i]), char.ToLowerInvariant((char)bytes[i]));
            pos += 1 + n;
        }
        Assert.Equal(0, wire[pos]);
        Assert.Equal(labels.Length, DnsName.LabelCount(wire));
    }

    [Fact]
    public void Rejects_a_compression_loop_in_the_question()
    {
        // Header, then a question name that is a pointer to itself.
        byte[] packet = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1];
        Assert.Equal(ParseStatus.FormErr, QueryParser.Parse(packet, new byte[255], out _));
        // A label followed by a pointer back to that label.
        byte[] loop = [0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, (byte)'a', 0xC0, 12, 0, 1, 0, 1];
        Assert.Equal(ParseStatus.FormErr, QueryParser.Parse(loop, new byte[255], out _));
    }

    [Fact]
    public void Follows_a_backward_pointer_in_the_question()
    {
        // The id and flags bytes double as the name "a." at offset 0; the question is "b" plus a pointer to it.
        byte[] packet = [1, (byte)'a', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, (byte)'b', 0xC0, 0, 0, 1, 0, 1];
        var name = new byte[255];
        Assert.Equal(ParseStatus.Ok, QueryParser.Parse(packet, name, out var q));
        Assert.Equal("b.a.", DnsName.ToDotted(name.AsSpan(0, q.NameLength)));
        Assert.Equal(packet.Length, q.QuestionEnd);
    }

    [Fact]
    public void Drops_responses_and_runts()
    {
        var bytes = ArSoft.Encode(ArSoft.Query("a.", RecordType.A));
        bytes[2] |= 0x80;
        Assert.Equal(ParseStatus.Drop, QueryParser.Parse(bytes, new byte[255], out _));
        Assert.Equal(ParseStatus.Drop, QueryParser.Parse(bytes.AsSpan(0, 11), new byte[255], out _));
    }

    [Fact]
    public void Two_OPT_records_are_a_format_error()
    {
        var bytes = ArSoft.Encode(ArSoft.Query("a.", RecordType.A, edns: true)).ToList();
        bytes.AddRange(bytes.GetRange(bytes.Count - 11, 11));
        bytes[11] = 2;
        Assert.Equal(ParseStatus.FormErr, QueryParser.Parse(bytes.ToArray(), new byte[255], out _));
    }

    [Fact]
    public void Opcode_other_than_query_is_not_implemented()
    {
        var bytes = ArSoft.Encode(ArSoft.Query("a.", RecordType.A));
        bytes[2] |= 2 << 3; // STATUS
        Assert.Equal(ParseStatus.NotImp, QueryParser.Parse(bytes, new byte[255], out var q));
        Assert.Equal(2, q.Opcode);
    }
}
