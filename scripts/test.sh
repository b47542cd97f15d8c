#!/usr/bin/env bash
# Runs the whole test suite: unit tests, kernel integration tests (root) and interop tests with real peers.
# Installs what is missing first. Exit code 0 only if every test passed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "test: run as root (the integration tests create network namespaces)" >&2; exit 1; }
"$ROOT/scripts/deps.sh"
cd "$ROOT"
dotnet build Discovery.sln -c Release --nologo -v quiet
"$ROOT/scripts/build.sh"
export DISCOVERY_BIN="$ROOT/.out/bin/discovery"
status=0
mkdir -p .out/test
for proj in tests/*/*.csproj; do
  name=$(basename "$(dirname "$proj")")
  echo "== $name"
  if dotnet test "$proj" -c Release --no-build --nologo --logger "console;verbosity=normal" >".out/test/$name.log" 2>&1; then
    result=ok
  else
    result=FAILED; status=1
  fi
  grep -E '^\s*(Failed|Skipped) |Total tests:|^\s*(Passed|Failed|Skipped):' ".out/test/$name.log" || true
  [ $result = ok ] || { grep -A25 -E "^\s*Failed " ".out/test/$name.log" | head -150 || true; }
  echo "   -> $name: $result (full log: .out/test/$name.log)"
done
[ $status = 0 ] && echo "ALL TESTS PASSED" || echo "SOME TESTS FAILED"
exit $status
