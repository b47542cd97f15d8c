using System.Runtime.InteropServices;

namespace Discovery.Platform;

/// <summary>
/// One libnftables context (Debian libnftables1, 1.0.6). nft_ctx_new opens the context's netfilter netlink socket in
/// the calling thread's network namespace, and every later command of the context goes through that socket, whatever
/// thread calls. Two things per command still follow the calling thread's namespace: interface name/index lookups
/// (iif/oif, which open a NETLINK_ROUTE socket per command) and nothing else we use, so commands run on a thread of
/// the namespace too (see <see cref="NftContexts"/>).
/// Every call must hold <see cref="Gate"/>: libnftables keeps process-wide mutable state that a command uses (the
/// interface cache is one global list, filled and freed by every command and by nft_ctx_free; gmp set-up is a
/// static once-flag), so two contexts must not run at the same time, not even in different namespaces.
/// </summary>
internal sealed partial class NftContext : IDisposable
{
    private const string Lib = "libnftables.so.1";

    /// <summary>The one lock around every libnftables call in the process.</summary>
    public static readonly object Gate = new();

    private nint _ctx;

    private NftContext(nint ctx) => _ctx = ctx;

    /// <summary>A context whose socket lives in the calling thread's namespace; caller holds <see cref="Gate"/>.</summary>
    public static NftContext Open(string where)
    {
        var ctx = nft_ctx_new(0);   // NFT_CTX_DEFAULT: opens the netlink socket now
        if (ctx == 0) throw new NftException("nft_ctx_new failed (out of memory?)", $"nft in {where}: cannot create a libnftables context");
        if (nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0)
        {
            nft_ctx_free(ctx);
            throw new NftException("cannot buffer output", $"nft in {where}: cannot buffer libnftables output");
        }
        return new NftContext(ctx);
    }

    /// <summary>
    /// Runs <paramref name="text"/> as one batch (one kernel transaction); caller holds <see cref="Gate"/>.
    /// Before building a batch, libnftables compares its cached ruleset with the kernel's generation id and refetches
    /// it when anyone (us, the nft CLI, another process) committed since; a failed command drops the cache.
    /// </summary>
    public string Run(string text, string where)
    {
        ObjectDisposedException.ThrowIf(_ctx == 0, this);
        var rc = nft_run_cmd_from_buffer(_ctx, text);
        // get_*_buffer rewinds the buffer: read both on every call so nothing leaks into the next command's text.
        var output = Marshal.PtrToStringUTF8(nft_ctx_get_output_buffer(_ctx)) ?? "";
        var error = (Marshal.PtrToStringUTF8(nft_ctx_get_error_buffer(_ctx)) ?? "").TrimEnd();
        if (rc == 0) return output;
        if (error.Length == 0) error = "nft failed without an error message";
        throw new NftException(error, $"nft in {where}: {error}");
    }

    /// <summary>Frees the context and closes its socket; caller holds <see cref="Gate"/> (nft_ctx_free touches global state).</summary>
    public void Dispose()
    {
        var ctx = _ctx;
        _ctx = 0;
        if (ctx != 0) nft_ctx_free(ctx);
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
