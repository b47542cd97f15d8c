namespace Discovery.Cni;

/// <summary>The CNI operations (CNI_COMMAND). GC and STATUS are CNI 1.1.</summary>
public enum CniCommandKind { Add, Del, Check, Version, Gc, Status }
