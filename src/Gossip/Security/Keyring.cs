using System.Security.Cryptography;

namespace Discovery.Gossip.Security;

/// <summary>A key that cannot be installed, used or removed (wrong length, unknown, or the primary).</summary>
public sealed class KeyringException : Exception
{
    public KeyringException(string message) : base(message) { }
}

/// <summary>
/// The gossip encryption keys, as memberlist's keyring: the primary key encrypts everything we send, every
/// installed key is tried on receive, so a cluster can rotate keys without a flag day
/// (install everywhere → use everywhere → remove the old one everywhere).
/// Encryption is on as soon as one key is installed. Thread-safe; readers see an immutable snapshot.
/// </summary>
public sealed class Keyring : IDisposable
{
    private readonly object _gate = new();
    private KeyEntry[] _keys = [];   // primary first
    private readonly List<KeyEntry> _retired = []; // removed keys; in-flight decrypts may still hold them

    public Keyring() { }

    public Keyring(byte[] primary, params byte[][] secondary)
    {
        Install(primary);
        foreach (var k in secondary) Install(k);
    }

    /// <summary>Builds a keyring from base64 keys (serf's -encrypt format); the first is the primary.</summary>
    public static Keyring FromBase64(params string[] keys)
    {
        var ring = new Keyring();
        foreach (var k in keys) ring.Install(DecodeBase64(k));
        return ring;
    }

    public static byte[] DecodeBase64(string key)
    {
        byte[] raw;
        try { raw = Convert.FromBase64String(key.Trim()); }
        catch (FormatException e) { throw new KeyringException($"gossip key is not valid base64: {e.Message}"); }
        Validate(raw);
        return raw;
    }

    public bool Enabled => Volatile.Read(ref _keys).Length > 0;

    internal KeyEntry[] Snapshot => Volatile.Read(ref _keys);

    public byte[]? PrimaryKey { get { var k = Snapshot; return k.Length > 0 ? k[0].Key.ToArray() : null; } }

    /// <summary>All installed keys, primary first (copies).</summary>
    public IReadOnlyList<byte[]> Keys => Snapshot.Select(k => k.Key.ToArray()).ToArray();

    /// <summary>Adds a key. The first key installed becomes the primary; installing an existing key is a no-op.</summary>
    public void Install(byte[] key)
    {
        Validate(key);
        lock (_gate)
        {
            if (_keys.Any(k => k.Matches(key))) return;
            _keys = [.. _keys, new KeyEntry(key.ToArray())];
        }
    }

    /// <summary>Makes an installed key the primary.</summary>
    public void Use(byte[] key)
    {
        lock (_gate)
        {
            int i = Array.FindIndex(_keys, k => k.Matches(key));
            if (i < 0) throw new KeyringException("requested key is not in the keyring");
            var next = _keys.ToList();
            var entry = next[i];
            next.RemoveAt(i);
            next.Insert(0, entry);
            _keys = [.. next];
        }
    }

    /// <summary>Removes a key that is not the primary.</summary>
    public void Remove(byte[] key)
    {
        lock (_gate)
        {
            int i = Array.FindIndex(_keys, k => k.Matches(key));
            if (i < 0) return;
            if (i == 0) throw new KeyringException("removing the primary key is not allowed");
            _retired.Add(_keys[i]);
            _keys = _keys.Where((_, j) => j != i).ToArray();
        }
    }

    private static void Validate(byte[] key)
    {
        if (key is not { Length: 16 or 24 or 32 })
            throw new KeyringException($"gossip key must be 16, 24 or 32 bytes (AES-128/192/256), got {key?.Length ?? 0}");
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var k in _keys) k.Dispose();
            foreach (var k in _retired) k.Dispose();
            _keys = [];
            _retired.Clear();
        }
    }

    /// <summary>One key with its cipher; AesGcm instances are not safe for concurrent use, hence the lock.</summary>
    internal sealed class KeyEntry : IDisposable
    {
        public readonly byte[] Key;
        private readonly AesGcm _gcm;
        private readonly object _lock = new();

        public KeyEntry(byte[] key) { Key = key; _gcm = new AesGcm(key, PacketEncryption.TagSize); }

        public bool Matches(byte[] other) => CryptographicOperations.FixedTimeEquals(Key, other);

        public void Seal(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plain, Span<byte> cipher, Span<byte> tag, ReadOnlySpan<byte> aad)
        {
            lock (_lock) _gcm.Encrypt(nonce, plain, cipher, tag, aad);
        }

        public bool TryOpen(ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> cipher, ReadOnlySpan<byte> tag, Span<byte> plain, ReadOnlySpan<byte> aad)
        {
            try
            {
                lock (_lock) _gcm.Decrypt(nonce, cipher, tag, plain, aad);
                return true;
            }
            catch (AuthenticationTagMismatchException)
            {
                // Expected for every key but the right one; the caller tries the next key.
                return false;
            }
        }

        public void Dispose() { lock (_lock) _gcm.Dispose(); }
    }
}
