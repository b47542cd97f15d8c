using System.Runtime.InteropServices;

namespace Discovery.Platform;

/// <summary>A native buffer of epoll events, one per waiting thread.</summary>
public sealed unsafe class EpollEvents : IDisposable
{
    public EpollEvents(int capacity)
    {
        Capacity = capacity;
        Memory = (byte*)NativeMemory.AllocZeroed((nuint)(capacity * EpollSet.EventSize));
    }

    public int Capacity { get; }
    internal byte* Memory { get; private set; }

    public ulong Token(int i) => EpollSet.DataAt(Memory, i);
    public uint Events(int i) => EpollSet.EventsAt(Memory, i);

    public void Dispose()
    {
        if (Memory == null) return;
        NativeMemory.Free(Memory);
        Memory = null;
    }
}
