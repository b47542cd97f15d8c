namespace Discovery.Gossip.Wire;

// The memberlist 0.2.2 message bodies. Keys are written in go-msgpack's order: Go field names sorted
// byte-wise. Fields tagged `codec:",omitempty"` in memberlist (the Source* fields) are left out when empty.
// Decoders accept keys in any order and skip keys they do not know, as go-msgpack does.

/// <summary>Direct probe. Node names the intended target so a restarted process at the same address is not fooled.</summary>
public sealed record PingMessage(uint SeqNo, string Node, byte[]? SourceAddr = null, ushort SourcePort = 0, string? SourceNode = null)
{
    public void Encode(WireBuffer b)
    {
        b.WriteByte((byte)MessageType.Ping);
        EncodeBody(b);
    }

    public void EncodeBody(WireBuffer b)
    {
        bool hasAddr = SourceAddr is { Length: > 0 }, hasNode = !string.IsNullOrEmpty(SourceNode), hasPort = SourcePort != 0;
        b.WriteMapHeader(2 + (hasAddr ? 1 : 0) + (hasNode ? 1 : 0) + (hasPort ? 1 : 0));
        b.WriteKey("Node"u8); b.WriteString(Node);
        b.WriteKey("SeqNo"u8); b.WriteUInt(SeqNo);
        if (hasAddr) { b.WriteKey("SourceAddr"u8); b.WriteBytes(SourceAddr); }
        if (hasNode) { b.WriteKey("SourceNode"u8); b.WriteString(SourceNode); }
        if (hasPort) { b.WriteKey("SourcePort"u8); b.WriteUInt(SourcePort); }
    }

    public static PingMessage Decode(ref MsgPackReader r)
    {
        uint seq = 0; string node = ""; byte[]? addr = null; ushort port = 0; string? src = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("SeqNo"u8)) seq = r.ReadUInt32();
            else if (k.SequenceEqual("Node"u8)) node = r.ReadString();
            else if (k.SequenceEqual("SourceAddr"u8)) addr = r.ReadBytes();
            else if (k.SequenceEqual("SourcePort"u8)) port = r.ReadUInt16();
            else if (k.SequenceEqual("SourceNode"u8)) src = r.ReadString();
            else r.Skip();
        }
        return new PingMessage(seq, node, addr, port, src);
    }
}

/// <summary>Ask a peer to probe Target:Port for us; Nack asks it to report a timeout.</summary>
public sealed record IndirectPingMessage(uint SeqNo, byte[] Target, ushort Port, string Node, bool Nack,
    byte[]? SourceAddr = null, ushort SourcePort = 0, string? SourceNode = null)
{
    public void Encode(WireBuffer b)
    {
        b.WriteByte((byte)MessageType.IndirectPing);
        bool hasAddr = SourceAddr is { Length: > 0 }, hasNode = !string.IsNullOrEmpty(SourceNode), hasPort = SourcePort != 0;
        b.WriteMapHeader(5 + (hasAddr ? 1 : 0) + (hasNode ? 1 : 0) + (hasPort ? 1 : 0));
        b.WriteKey("Nack"u8); b.WriteBool(Nack);
        b.WriteKey("Node"u8); b.WriteString(Node);
        b.WriteKey("Port"u8); b.WriteUInt(Port);
        b.WriteKey("SeqNo"u8); b.WriteUInt(SeqNo);
        if (hasAddr) { b.WriteKey("SourceAddr"u8); b.WriteBytes(SourceAddr); }
        if (hasNode) { b.WriteKey("SourceNode"u8); b.WriteString(SourceNode); }
        if (hasPort) { b.WriteKey("SourcePort"u8); b.WriteUInt(SourcePort); }
        b.WriteKey("Target"u8); b.WriteBytesOrNil(Target);
    }

    public static IndirectPingMessage Decode(ref MsgPackReader r)
    {
        uint seq = 0; byte[] target = []; ushort port = 0; string node = ""; bool nack = false;
        byte[]? addr = null; ushort sport = 0; string? src = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("SeqNo"u8)) seq = r.ReadUInt32();
            else if (k.SequenceEqual("Target"u8)) target = r.ReadBytes() ?? [];
            else if (k.SequenceEqual("Port"u8)) port = r.ReadUInt16();
            else if (k.SequenceEqual("Node"u8)) node = r.ReadString();
            else if (k.SequenceEqual("Nack"u8)) nack = r.ReadBool();
            else if (k.SequenceEqual("SourceAddr"u8)) addr = r.ReadBytes();
            else if (k.SequenceEqual("SourcePort"u8)) sport = r.ReadUInt16();
            else if (k.SequenceEqual("SourceNode"u8)) src = r.ReadString();
            else r.Skip();
        }
        return new IndirectPingMessage(seq, target, port, node, nack, addr, sport, src);
    }
}

/// <summary>Answer to a ping; serf puts its network coordinate in Payload (we send none, which serf ignores).</summary>
public sealed record AckMessage(uint SeqNo, byte[]? Payload = null)
{
    public void Encode(WireBuffer b)
    {
        b.WriteByte((byte)MessageType.Ack);
        b.WriteMapHeader(2);
        b.WriteKey("Payload"u8); b.WriteBytesOrNil(Payload);
        b.WriteKey("SeqNo"u8); b.WriteUInt(SeqNo);
    }

    public static AckMessage Decode(ref MsgPackReader r)
    {
        uint seq = 0; byte[]? payload = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("SeqNo"u8)) seq = r.ReadUInt32();
            else if (k.SequenceEqual("Payload"u8)) payload = r.ReadBytes();
            else r.Skip();
        }
        return new AckMessage(seq, payload);
    }
}

/// <summary>An indirect prober could not reach the target: evidence that we ourselves are healthy.</summary>
public sealed record NackMessage(uint SeqNo)
{
    public void Encode(WireBuffer b)
    {
        b.WriteByte((byte)MessageType.Nack);
        b.WriteMapHeader(1);
        b.WriteKey("SeqNo"u8); b.WriteUInt(SeqNo);
    }

    public static NackMessage Decode(ref MsgPackReader r)
    {
        uint seq = 0;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("SeqNo"u8)) seq = r.ReadUInt32();
            else r.Skip();
        }
        return new NackMessage(seq);
    }
}

/// <summary>Sent back on a stream that could not be handled.</summary>
public sealed record ErrorMessage(string Error)
{
    public void Encode(WireBuffer b)
    {
        b.WriteByte((byte)MessageType.Error);
        b.WriteMapHeader(1);
        b.WriteKey("Error"u8); b.WriteString(Error);
    }

    public static ErrorMessage Decode(ref MsgPackReader r)
    {
        string err = "";
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("Error"u8)) err = r.ReadString();
            else r.Skip();
        }
        return new ErrorMessage(err);
    }
}

/// <summary>Suspect and dead share one shape: {From, Incarnation, Node}.</summary>
public sealed record SuspectMessage(uint Incarnation, string Node, string From)
{
    public void Encode(WireBuffer b) => StateChange.Encode(b, MessageType.Suspect, Incarnation, Node, From);
    public static SuspectMessage Decode(ref MsgPackReader r) { StateChange.Decode(ref r, out var inc, out var node, out var from); return new(inc, node, from); }
}

/// <summary>Dead with From == Node means the node left on purpose.</summary>
public sealed record DeadMessage(uint Incarnation, string Node, string From)
{
    public void Encode(WireBuffer b) => StateChange.Encode(b, MessageType.Dead, Incarnation, Node, From);
    public static DeadMessage Decode(ref MsgPackReader r) { StateChange.Decode(ref r, out var inc, out var node, out var from); return new(inc, node, from); }
}

internal static class StateChange
{
    public static void Encode(WireBuffer b, MessageType type, uint incarnation, string node, string from)
    {
        b.WriteByte((byte)type);
        b.WriteMapHeader(3);
        b.WriteKey("From"u8); b.WriteString(from);
        b.WriteKey("Incarnation"u8); b.WriteUInt(incarnation);
        b.WriteKey("Node"u8); b.WriteString(node);
    }

    public static void Decode(ref MsgPackReader r, out uint incarnation, out string node, out string from)
    {
        incarnation = 0; node = ""; from = "";
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("Incarnation"u8)) incarnation = r.ReadUInt32();
            else if (k.SequenceEqual("Node"u8)) node = r.ReadString();
            else if (k.SequenceEqual("From"u8)) from = r.ReadString();
            else r.Skip();
        }
    }
}

/// <summary>Announces a node (join, refutation, meta update). Vsn = pmin, pmax, pcur, dmin, dmax, dcur.</summary>
public sealed record AliveMessage(uint Incarnation, string Node, byte[] Addr, ushort Port, byte[]? Meta, byte[]? Vsn)
{
    public void Encode(WireBuffer b)
    {
        b.WriteByte((byte)MessageType.Alive);
        b.WriteMapHeader(6);
        b.WriteKey("Addr"u8); b.WriteBytesOrNil(Addr);
        b.WriteKey("Incarnation"u8); b.WriteUInt(Incarnation);
        b.WriteKey("Meta"u8); b.WriteBytesOrNil(Meta);
        b.WriteKey("Node"u8); b.WriteString(Node);
        b.WriteKey("Port"u8); b.WriteUInt(Port);
        b.WriteKey("Vsn"u8); b.WriteBytesOrNil(Vsn);
    }

    public static AliveMessage Decode(ref MsgPackReader r)
    {
        uint inc = 0; string node = ""; byte[] addr = []; ushort port = 0; byte[]? meta = null; byte[]? vsn = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("Incarnation"u8)) inc = r.ReadUInt32();
            else if (k.SequenceEqual("Node"u8)) node = r.ReadString();
            else if (k.SequenceEqual("Addr"u8)) addr = r.ReadBytes() ?? [];
            else if (k.SequenceEqual("Port"u8)) port = r.ReadUInt16();
            else if (k.SequenceEqual("Meta"u8)) meta = r.ReadBytes();
            else if (k.SequenceEqual("Vsn"u8)) vsn = ReadVsn(ref r);
            else r.Skip();
        }
        return new AliveMessage(inc, node, addr, port, meta, vsn);
    }

    /// <summary>Go's []uint8 is a byte slice (raw), but tolerate an array of small ints from other encoders.</summary>
    internal static byte[]? ReadVsn(ref MsgPackReader r)
    {
        byte c = r.PeekCode();
        if ((c & 0xf0) == 0x90 || c == 0xdc || c == 0xdd)
        {
            int n = r.ReadArrayHeader();
            var v = new byte[n];
            for (int i = 0; i < n; i++) v[i] = r.ReadUInt8();
            return v;
        }
        return r.ReadBytes();
    }
}

/// <summary>Precedes the node states in a push-pull; UserStateLen raw bytes follow the last node.</summary>
public readonly record struct PushPullHeader(int Nodes, int UserStateLen, bool Join)
{
    public void Encode(WireBuffer b)
    {
        b.WriteMapHeader(3);
        b.WriteKey("Join"u8); b.WriteBool(Join);
        b.WriteKey("Nodes"u8); b.WriteInt(Nodes);
        b.WriteKey("UserStateLen"u8); b.WriteInt(UserStateLen);
    }

    public static PushPullHeader Decode(ref MsgPackReader r)
    {
        int nodes = 0, len = 0; bool join = false;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("Nodes"u8)) nodes = r.ReadLength();
            else if (k.SequenceEqual("UserStateLen"u8)) len = r.ReadLength();
            else if (k.SequenceEqual("Join"u8)) join = r.ReadBool();
            else r.Skip();
        }
        return new PushPullHeader(nodes, len, join);
    }
}

/// <summary>One member as the sender sees it, in a push-pull.</summary>
public sealed record PushNodeState(string Name, byte[] Addr, ushort Port, byte[]? Meta, uint Incarnation, MemberState State, byte[]? Vsn)
{
    public void Encode(WireBuffer b)
    {
        b.WriteMapHeader(7);
        b.WriteKey("Addr"u8); b.WriteBytesOrNil(Addr);
        b.WriteKey("Incarnation"u8); b.WriteUInt(Incarnation);
        b.WriteKey("Meta"u8); b.WriteBytesOrNil(Meta);
        b.WriteKey("Name"u8); b.WriteString(Name);
        b.WriteKey("Port"u8); b.WriteUInt(Port);
        b.WriteKey("State"u8); b.WriteInt((int)State);
        b.WriteKey("Vsn"u8); b.WriteBytesOrNil(Vsn);
    }

    public static PushNodeState Decode(ref MsgPackReader r)
    {
        string name = ""; byte[] addr = []; ushort port = 0; byte[]? meta = null; uint inc = 0; MemberState state = MemberState.Alive; byte[]? vsn = null;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("Name"u8)) name = r.ReadString();
            else if (k.SequenceEqual("Addr"u8)) addr = r.ReadBytes() ?? [];
            else if (k.SequenceEqual("Port"u8)) port = r.ReadUInt16();
            else if (k.SequenceEqual("Meta"u8)) meta = r.ReadBytes();
            else if (k.SequenceEqual("Incarnation"u8)) inc = r.ReadUInt32();
            else if (k.SequenceEqual("State"u8))
            {
                long s = r.ReadInt64();
                state = s is >= 0 and <= 3 ? (MemberState)s : throw new WireFormatException($"push-pull: unknown node state {s}");
            }
            else if (k.SequenceEqual("Vsn"u8)) vsn = AliveMessage.ReadVsn(ref r);
            else r.Skip();
        }
        return new PushNodeState(name, addr, port, meta, inc, state, vsn);
    }
}

/// <summary>A user message sent over a stream (memberlist SendReliable).</summary>
public readonly record struct UserMsgHeader(int UserMsgLen)
{
    public void Encode(WireBuffer b)
    {
        b.WriteMapHeader(1);
        b.WriteKey("UserMsgLen"u8); b.WriteInt(UserMsgLen);
    }

    public static UserMsgHeader Decode(ref MsgPackReader r)
    {
        int len = 0;
        int n = r.ReadMapHeader();
        for (int i = 0; i < n; i++)
        {
            var k = r.ReadRawSpan();
            if (k.SequenceEqual("UserMsgLen"u8)) len = r.ReadLength();
            else r.Skip();
        }
        return new UserMsgHeader(len);
    }
}
