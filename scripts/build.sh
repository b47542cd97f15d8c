#!/usr/bin/env bash
# Builds the single `discovery` binary into .out/bin (framework-dependent; needs the .NET 10 runtime).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$ROOT/.out"
if ! dotnet publish "$ROOT/src/Daemon/Discovery.Daemon.csproj" -c Release -o "$ROOT/.out/bin" --nologo >"$ROOT/.out/build.log" 2>&1; then
  grep -E "error|Error" "$ROOT/.out/build.log" | sort -u >&2 || cat "$ROOT/.out/build.log" >&2
  echo "build failed (full log: .out/build.log)" >&2
  exit 1
fi
echo "built $ROOT/.out/bin/discovery" >&2
