using System.Net;

namespace Discovery.Lb.Selection;

/// <summary>One task that a VIP may send new connections to.</summary>
/// <param name="Id">The endpoint id: the same on every host, so it is the backend's identity for Maglev filling.</param>
/// <param name="Address">The task's overlay address; the VIP's port is the task's target port.</param>
public readonly record struct Backend(string Id, IPAddress Address);
