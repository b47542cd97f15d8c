using Discovery.Model;

namespace Discovery.Lb.Selection;

/// <summary>
/// A fixed number of slots per VIP port, and how a flow picks one. The sandbox table holds one set and one rule per
/// tier (never per service), so a VIP moving between tiers is a set-element change, not a rule change.
/// </summary>
/// <param name="Balance">random: numgen random mod Slots; consistent: jhash of the flow's source mod Slots.</param>
/// <param name="Slots">M, the slot count.</param>
public readonly record struct SlotTier(BalanceMode Balance, int Slots)
{
    /// <summary>Short name used for the tier's set and in logs: r3, r1024, c1021.</summary>
    public string Name => (Balance == BalanceMode.Consistent ? "c" : "r") + Slots.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public override string ToString() => Name;
}
