#!/usr/bin/env bash
# Builds the binaries into .out/bin: `discovery`, the command-line client (Native AOT: starts in milliseconds), and
# `discoveryd`, the agent (framework-dependent; needs the .NET 10 runtime), which `discovery agent …` runs.
# Both publishes are incremental: a second run with no change re-links nothing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/.out/bin"
mkdir -p "$ROOT/.out"
: >"$ROOT/.out/build.log"
publish() {
  if ! dotnet publish "$ROOT/$1" -c Release -o "$OUT" --nologo >>"$ROOT/.out/build.log" 2>&1; then
    grep -E "error|Error" "$ROOT/.out/build.log" | sort -u >&2 || cat "$ROOT/.out/build.log" >&2
    echo "build failed (full log: .out/build.log)" >&2
    exit 1
  fi
}
publish src/Daemon/Discovery.Daemon.csproj
# What an older build left under the client's name (the agent and the CLI were one JIT assembly, `discovery`).
rm -f "$OUT"/discovery.dll "$OUT"/discovery.pdb "$OUT"/discovery.deps.json "$OUT"/discovery.runtimeconfig.json
publish src/Cli/Discovery.Cli.csproj
echo "built $OUT/discovery (client) and $OUT/discoveryd (agent)" >&2
