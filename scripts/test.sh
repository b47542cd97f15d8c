#!/usr/bin/env bash
# Runs the whole test suite: unit tests, kernel integration tests (root) and interop tests with real peers.
# Installs what is missing first. Exit code 0 only if every test passed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "test: run as root (the integration tests create network namespaces)" >&2; exit 1; }
"$ROOT/scripts/deps.sh"
# The Grafana dashboard check's npm packages (pinned by its package-lock.json; nothing to do once installed).
"$ROOT/tests/ops/grafana/install.sh"
cd "$ROOT"
dotnet build Discovery.sln -c Release --nologo -v quiet
"$ROOT/scripts/build.sh"
export DISCOVERY_BIN="$ROOT/.out/bin/discovery"
status=0
mkdir -p .out/test
rm -f .out/test/*.trx
passed=0; failed=0; skipped=0
for proj in tests/*/*.csproj; do
  name=$(basename "$(dirname "$proj")")
  echo "== $name"
  if dotnet test "$proj" -c Release --no-build --nologo --logger "console;verbosity=normal" \
       --logger "trx;LogFileName=$ROOT/.out/test/$name.trx" >".out/test/$name.log" 2>&1; then
    result=ok
  else
    result=FAILED; status=1
  fi
  grep -E '^\s*(Failed|Skipped) |Total tests:|^\s*(Passed|Failed|Skipped):' ".out/test/$name.log" || true
  [ $result = ok ] || { grep -A25 -E "^\s*Failed " ".out/test/$name.log" | head -150 || true; }
  echo "   -> $name: $result (full log: .out/test/$name.log)"
  # Counts come from the TRX file; a project that crashed before writing one counts as one failure.
  if counts=$(grep -o '<Counters [^>]*>' ".out/test/$name.trx" 2>/dev/null); then
    get() { echo "$counts" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
    passed=$((passed + $(get passed))); failed=$((failed + $(get failed))); skipped=$((skipped + $(get notExecuted)))
  else
    failed=$((failed + 1)); echo "   -> $name: no results file (the test host crashed?)"
  fi
done
[ $status = 0 ] && echo "ALL TESTS PASSED" || echo "SOME TESTS FAILED"
line="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
exit $status
