using Discovery.Platform.Native;

namespace Discovery.Platform;

/// <summary>The kernel refused a netlink request. Message: "netlink link_create veth0: File exists (EEXIST)".</summary>
public class NetlinkException : Exception
{
    public NetlinkException(string operation, string target, int errno, string? kernelMessage = null)
        : base(Format(operation, target, errno, kernelMessage))
    {
        Operation = operation;
        Target = target;
        Errno = errno;
        KernelMessage = kernelMessage;
    }

    public NetlinkException(string operation, string target, string problem)
        : base($"netlink {operation} {target}: {problem}")
    {
        Operation = operation;
        Target = target;
    }

    /// <summary>Operation name as counted in metrics, e.g. "link_create", "neigh_add".</summary>
    public string Operation { get; }

    /// <summary>What the operation was about, e.g. the link name or "vxlan0 198.19.1.3".</summary>
    public string Target { get; }

    /// <summary>Positive errno (see <see cref="Discovery.Platform.Errno"/>); 0 when the failure was not a kernel errno.</summary>
    public int Errno { get; }

    /// <summary>The kernel's extended-ACK text, when it gave one.</summary>
    public string? KernelMessage { get; }

    private static string Format(string operation, string target, int errno, string? kernelMessage) =>
        $"netlink {operation} {target}: {Libc.Describe(errno)}" + (string.IsNullOrEmpty(kernelMessage) ? "" : $": {kernelMessage}");
}

/// <summary>errno values callers test for (asm-generic/errno-base.h, errno.h).</summary>
public static class Errno
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int ENODEV = 19;
    public const int EINVAL = 22;
    public const int ERANGE = 34;
    public const int EOPNOTSUPP = 95;
    public const int EADDRINUSE = 98;
    public const int EADDRNOTAVAIL = 99;
    public const int ENOBUFS = 105;
}
