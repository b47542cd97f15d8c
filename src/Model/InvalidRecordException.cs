namespace Discovery.Model;

/// <summary>A record breaks a semantic rule (name, VNI range, prefix length, MAC format…).
/// An <see cref="ArgumentException"/>, so an API layer can answer it with a 4xx.</summary>
public sealed class InvalidRecordException : ArgumentException
{
    /// <summary>The record type, e.g. "EndpointRecord".</summary>
    public string RecordType { get; }

    /// <summary>The broken rule, without the record type.</summary>
    public string Problem { get; }

    public InvalidRecordException(string recordType, string problem)
        : base($"invalid {recordType}: {problem}")
    {
        RecordType = recordType;
        Problem = problem;
    }

    internal static void ThrowIf(string recordType, string? problem)
    {
        if (problem is not null) throw new InvalidRecordException(recordType, problem);
    }
}
