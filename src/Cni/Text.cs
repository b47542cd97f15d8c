namespace Discovery.Cni;

/// <summary>Hostile text echoed in an error: bounded and printable, so a message stays one line.</summary>
internal static class Text
{
    public static string Printable(string? s) =>
        s is null ? "" : new string([.. s.Take(80).Select(c => c is < ' ' or > '~' ? '?' : c)]);

    /// <summary>A message from elsewhere (the agent) kept to one bounded line: it may echo what the caller sent.</summary>
    public static string OneLine(string s) =>
        new([.. s.Take(1000).Select(c => char.IsControl(c) ? '?' : c)]);
}
