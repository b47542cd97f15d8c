using System.Text;

namespace Discovery.Tests.Api;

/// <summary>A server's bytes, handed out at most <c>chunk</c> bytes per read (1 tests every buffer edge); what the
/// client writes is kept.</summary>
public sealed class ScriptedStream(string answer, int chunk = int.MaxValue) : Stream
{
    private readonly byte[] _answer = Encoding.Latin1.GetBytes(answer);
    private int _pos;
    public MemoryStream Written { get; } = new();
    public string Request => Encoding.Latin1.GetString(Written.ToArray());

    public override int Read(byte[] buffer, int offset, int count)
    {
        var n = Math.Min(Math.Min(count, chunk), _answer.Length - _pos);
        Array.Copy(_answer, _pos, buffer, offset, n);
        _pos += n;
        return n;
    }

    public override void Write(byte[] buffer, int offset, int count) => Written.Write(buffer, offset, count);
    public override void Flush() { }
    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
