using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Discovery.Platform;

/// <summary>
/// libnftables (Debian libnftables1) in-process. A context talks to the kernel through a netlink socket it opens
/// itself, so every call runs on the target namespace's thread, with a fresh context that dies there too.
/// </summary>
public static partial class Nftables
{
    private const string Lib = "libnftables.so.1";

    // libnftables keeps process-wide state (caches, symbol tables) that its docs do not promise is thread-safe.
    private static readonly object s_gate = new();

    /// <summary>(elapsed, success) per <see cref="Apply"/>; for discovery_nft_apply_seconds.</summary>
    public static Action<TimeSpan, bool>? ApplyObserver { get; set; }

    /// <summary>
    /// Runs <paramref name="ruleset"/> as one transaction in <paramref name="ns"/>: all of it takes effect or none of it.
    /// </summary>
    public static void Apply(NetNs ns, string ruleset)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(ruleset);
        var clock = Stopwatch.StartNew();
        var success = false;
        try
        {
            ns.Run(() => Execute(ruleset, ns));
            success = true;
        }
        finally
        {
            ApplyObserver?.Invoke(clock.Elapsed, success);
        }
    }

    /// <summary>Runs one command (e.g. "list table ip foo") in <paramref name="ns"/> and returns nft's output text.</summary>
    public static string Run(NetNs ns, string command)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentException.ThrowIfNullOrEmpty(command);
        return ns.Run(() => Execute(command, ns));
    }

    private static string Execute(string text, NetNs ns)
    {
        lock (s_gate)
        {
            var ctx = nft_ctx_new(0);   // NFT_CTX_DEFAULT
            if (ctx == 0) throw new NftException("nft_ctx_new failed (out of memory?)", $"nft in {ns}: cannot create a libnftables context");
            try
            {
                if (nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0)
                    throw new NftException("cannot buffer output", $"nft in {ns}: cannot buffer libnftables output");
                var rc = nft_run_cmd_from_buffer(ctx, text);
                var output = Marshal.PtrToStringUTF8(nft_ctx_get_output_buffer(ctx)) ?? "";
                if (rc != 0)
                {
                    var error = (Marshal.PtrToStringUTF8(nft_ctx_get_error_buffer(ctx)) ?? "").TrimEnd();
                    if (error.Length == 0) error = "nft failed without an error message";
                    throw new NftException(error, $"nft in {ns}: {error}");
                }
                return output;
            }
            finally
            {
                nft_ctx_free(ctx);
            }
        }
    }

    [LibraryImport(Lib)]
    private static partial nint nft_ctx_new(uint flags);

    [LibraryImport(Lib)]
    private static partial void nft_ctx_free(nint ctx);

    [LibraryImport(Lib)]
    private static partial int nft_ctx_buffer_output(nint ctx);

    [LibraryImport(Lib)]
    private static partial nint nft_ctx_get_output_buffer(nint ctx);

    [LibraryImport(Lib)]
    private static partial int nft_ctx_buffer_error(nint ctx);

    [LibraryImport(Lib)]
    private static partial nint nft_ctx_get_error_buffer(nint ctx);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int nft_run_cmd_from_buffer(nint ctx, string buffer);
}

/// <summary>nft refused a command or ruleset. <see cref="NftMessage"/> is nft's own error text.</summary>
public class NftException : Exception
{
    public NftException(string nftMessage, string message) : base(message) => NftMessage = nftMessage;

    public string NftMessage { get; }
}
