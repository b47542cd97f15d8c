namespace Discovery.Model;

/// <summary>Bytes handed to <see cref="RecordCodec"/> are not a valid encoding of the expected record:
/// truncated, wrong type or version, bad length, address family or UTF-8, a limit exceeded, trailing bytes,
/// or well-formed but breaking a semantic rule. The only exception a Decode method throws.</summary>
public sealed class RecordFormatException : FormatException
{
    /// <summary>The record type the caller asked for, e.g. "NetworkSpec".</summary>
    public string RecordType { get; }

    /// <summary>What is wrong, without the record type.</summary>
    public string Problem { get; }

    public RecordFormatException(string recordType, string problem)
        : base($"{recordType} record: {problem}")
    {
        RecordType = recordType;
        Problem = problem;
    }
}
