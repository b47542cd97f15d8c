namespace Discovery.Platform;

/// <summary>
/// sysctl per namespace. /proc/sys/net shows the namespace of whoever opens the file, so reads and writes open it
/// on the namespace's thread. Keys are dotted ("net.ipv4.ip_forward") or slash-separated when a component holds a
/// dot (an interface name such as "net/ipv4/conf/eth0.5/forwarding").
/// </summary>
public static class Sysctl
{
    public static string Read(NetNs ns, string key)
    {
        ArgumentNullException.ThrowIfNull(ns);
        var path = PathOf(key);
        return ns.Run(() =>
        {
            try
            {
                return File.ReadAllText(path).TrimEnd('\n');
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw Fail("read", key, ns, ex);
            }
        });
    }

    public static void Write(NetNs ns, string key, string value)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(value);
        var path = PathOf(key);
        ns.Run(() =>
        {
            try
            {
                // FileMode.Open: never create or truncate-create under /proc.
                using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1, FileOptions.None);
                var bytes = System.Text.Encoding.ASCII.GetBytes(value + "\n");
                stream.Write(bytes);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw Fail("write", key, ns, ex);
            }
        });
    }

    private static string PathOf(string key)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (key.Contains("..")) throw new ArgumentException($"'{key}' is not a sysctl key", nameof(key));
        return "/proc/sys/" + (key.Contains('/') ? key.TrimStart('/') : key.Replace('.', '/'));
    }

    private static SysctlException Fail(string verb, string key, NetNs ns, Exception inner) =>
        new(key, inner is FileNotFoundException or DirectoryNotFoundException
            ? $"sysctl {verb} {key} in netns {ns}: no such key"
            : $"sysctl {verb} {key} in netns {ns}: {inner.Message}", inner);
}

public class SysctlException : Exception
{
    public SysctlException(string key, string message, Exception? inner = null) : base(message, inner) => Key = key;

    public string Key { get; }
}
