using System.Runtime.InteropServices;

namespace Discovery.Platform.Netlink;

/// <summary>
/// The netlink messages packed in one datagram, without copying: each with its header fields. Stops at the first
/// header whose length does not fit (a truncated or corrupt datagram). Messages are 4-byte aligned.
/// </summary>
internal ref struct NetlinkMessages(ReadOnlySpan<byte> datagram)
{
    private ReadOnlySpan<byte> _rest = datagram;

    public readonly ref struct Item(ReadOnlySpan<byte> message)
    {
        public ReadOnlySpan<byte> Message { get; } = message;
        public ushort Type => MemoryMarshal.Read<ushort>(Message[4..]);
        public ushort Flags => MemoryMarshal.Read<ushort>(Message[6..]);
        public uint Seq => MemoryMarshal.Read<uint>(Message[8..]);
    }

    public Item Current { get; private set; }

    public readonly NetlinkMessages GetEnumerator() => this;

    public bool MoveNext()
    {
        if (_rest.Length < Nl.HeaderSize) return false;
        var length = (int)MemoryMarshal.Read<uint>(_rest);
        if (length < Nl.HeaderSize || length > _rest.Length) return false;
        Current = new Item(_rest[..length]);
        _rest = _rest[Math.Min((length + 3) & ~3, _rest.Length)..];
        return true;
    }
}
