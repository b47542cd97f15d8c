namespace Discovery.Bench.Lb;

/// <summary>The one-screen table at the end of a run: one line per target of issue 10, with its outcome.</summary>
internal static class Summary
{
    public static void Print(IReadOnlyList<Verdict> verdicts)
    {
        Console.WriteLine();
        Console.WriteLine("== summary: issue 10 targets (values from this run; anchors measured in the same run) ==");
        var w0 = Math.Max(6, verdicts.Max(v => v.Target.Length));
        var w1 = Math.Max(7, verdicts.Max(v => v.Subject.Length));
        var w2 = Math.Max(5, verdicts.Max(v => v.Value.Length));
        Console.WriteLine($"{"target".PadRight(w0)}  {"subject".PadRight(w1)}  {"value".PadRight(w2)}  result  anchor");
        foreach (var v in verdicts)
            Console.WriteLine($"{v.Target.PadRight(w0)}  {v.Subject.PadRight(w1)}  {v.Value.PadRight(w2)}  {Text(v.Outcome),-6}  {v.Anchor}");
    }

    public static Outcome Judge(bool pass) => pass ? Outcome.Pass : Outcome.Fail;

    private static string Text(Outcome o) => o switch
    {
        Outcome.Pass => "PASS",
        Outcome.Fail => "FAIL",
        _ => "-",
    };
}
