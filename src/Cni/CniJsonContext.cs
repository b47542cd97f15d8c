using System.Text.Json;
using System.Text.Json.Serialization;

namespace Discovery.Cni;

/// <summary>The plugin's output JSON, generated at compile time (Native AOT: no reflection). Input is read with
/// JsonDocument (<see cref="NetworkConfig"/>), which keeps unknown keys harmless and checks shapes by hand.</summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CniResult))]
[JsonSerializable(typeof(CniVersionResult))]
[JsonSerializable(typeof(CniErrorResult))]
public sealed partial class CniJsonContext : JsonSerializerContext;
