namespace Discovery.Gossip.Wire;

/// <summary>The first byte of every memberlist message (memberlist 0.2.2 net.go, iota order).</summary>
public enum MessageType : byte
{
    Ping = 0,
    IndirectPing = 1,
    Ack = 2,
    Suspect = 3,
    Alive = 4,
    Dead = 5,
    PushPull = 6,
    Compound = 7,
    /// <summary>Opaque to memberlist; handed to the delegate (serf uses 0–9 as its own first byte).</summary>
    User = 8,
    Compress = 9,
    /// <summary>Only on streams: 4-byte length, then the AES-GCM envelope.</summary>
    Encrypt = 10,
    Nack = 11,
    HasCrc = 12,
    Error = 13,
}

/// <summary>memberlist's nodeStateType as it travels in push-pull.</summary>
public enum MemberState : byte
{
    Alive = 0,
    Suspect = 1,
    Dead = 2,
    /// <summary>Dead with From == Node: the node said goodbye.</summary>
    Left = 3,
}
