#!/usr/bin/env bash
# Installs the dashboard check's npm packages (exact versions from package-lock.json) into node_modules beside this
# file. Idempotent: it does nothing when node_modules already holds what the lockfile pins, so scripts/test.sh and the
# C# test that runs validate.mjs can both call it.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null && command -v npm >/dev/null || { echo "grafana check: node and npm are required (not on PATH)" >&2; exit 1; }
stamp=node_modules/.lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
echo "grafana check: installing npm packages (npm ci)" >&2
npm ci --no-audit --no-fund --loglevel=error >&2
echo "$want" > "$stamp"
