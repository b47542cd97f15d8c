using System.Security.Cryptography;
using Discovery.Gossip.Wire;

namespace Discovery.Gossip.Security;

/// <summary>
/// memberlist's AES-GCM envelope (security.go): <c>[version:1][nonce:12][ciphertext][tag:16]</c>.
/// Version 1 (protocol ≥ 2, what serf speaks) encrypts the message as is; version 0 padded it with
/// PKCS#7 first and is accepted on receive only. UDP packets use no additional data; streams
/// authenticate their 5-byte <c>[10][length:4]</c> header as additional data.
/// </summary>
public static class PacketEncryption
{
    public const int VersionSize = 1;
    public const int NonceSize = 12;
    public const int TagSize = 16;
    public const int BlockSize = 16;
    /// <summary>The version we send: serf 0.9.4 speaks memberlist protocol 2, which selects version 1.</summary>
    public const byte SendVersion = 1;
    public const byte MaxVersion = 1;

    /// <summary>Bytes added by the envelope at version 1.</summary>
    public const int Overhead = VersionSize + NonceSize + TagSize;

    public static int EncryptedLength(int plainLength) => VersionSize + NonceSize + plainLength + TagSize;

    /// <summary>Encrypts with the keyring's primary key and appends the envelope to <paramref name="dst"/>.</summary>
    public static void Encrypt(Keyring keyring, ReadOnlySpan<byte> plain, ReadOnlySpan<byte> additionalData, WireBuffer dst)
    {
        var keys = keyring.Snapshot;
        if (keys.Length == 0) throw new KeyringException("encryption requested but the keyring is empty");
        var span = dst.GetSpan(EncryptedLength(plain.Length));
        span[0] = SendVersion;
        var nonce = span.Slice(VersionSize, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        var cipher = span.Slice(VersionSize + NonceSize, plain.Length);
        var tag = span.Slice(VersionSize + NonceSize + plain.Length, TagSize);
        keys[0].Seal(nonce, plain, cipher, tag, additionalData);
        dst.Advance(EncryptedLength(plain.Length));
    }

    /// <summary>
    /// Tries every installed key. On success appends the plaintext to <paramref name="dst"/> and returns null;
    /// otherwise returns memberlist's reason text (what it would log and send back in an error message).
    /// </summary>
    public static string? TryDecrypt(Keyring keyring, ReadOnlySpan<byte> message, ReadOnlySpan<byte> additionalData, WireBuffer dst)
    {
        if (message.IsEmpty) return "Cannot decrypt empty payload";
        byte version = message[0];
        if (version > MaxVersion) return $"Unsupported encryption version {version}";
        int minimum = VersionSize + NonceSize + TagSize + (version == 0 ? BlockSize : 0);
        if (message.Length < minimum) return $"Payload is too small to decrypt: {message.Length}";

        var nonce = message.Slice(VersionSize, NonceSize);
        var cipher = message[(VersionSize + NonceSize)..^TagSize];
        var tag = message[^TagSize..];
        var plain = dst.GetSpan(cipher.Length)[..cipher.Length];
        foreach (var key in keyring.Snapshot)
        {
            if (!key.TryOpen(nonce, cipher, tag, plain, additionalData)) continue;
            int length = cipher.Length;
            if (version == 0)
            {
                int pad = length == 0 ? 0 : plain[length - 1];
                if (pad == 0 || pad > BlockSize || pad > length) return "Invalid PKCS7 padding";
                length -= pad;
            }
            dst.Advance(length);
            return null;
        }
        return "No installed keys could decrypt the message";
    }
}
