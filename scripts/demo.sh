#!/usr/bin/env bash
# The main job: a Discovery lab on this machine. Installs what is missing, builds the agent, starts it in a lab
# host, creates a network, attaches two container namespaces, shows them pinging each other over br0 and prints
# the agent's metrics. Everything lives in namespaces prefixed "demo-" and is removed at the end
# (KEEP=1 leaves it running; remove it later with `LAB_PREFIX=demo- ops/lab/lab.sh down`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }
"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh"
# Forwarded (non-local) names go to 127.0.0.1:9 inside the lab host, where nothing listens: no demo query leaves the machine.
export LAB_PREFIX=demo- DISCOVERY_BIN="$ROOT/.out/bin/discovery" LAB_AGENT_ARGS="--dns-upstream 127.0.0.1:9"
LAB="$ROOT/ops/lab/lab.sh"
D=/tmp/discovery-lab/demo-
cleanup() { [ "${KEEP:-0}" = 1 ] || "$LAB" down; }
trap cleanup EXIT
"$LAB" down >/dev/null 2>&1 || true
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
cli() { "$DISCOVERY_BIN" --api-socket "$D/h1/agent.sock" "$@"; }

step "start an agent on lab host h1"
"$LAB" up 1
export DISCOVERY_API_SOCKET=$D/h1/agent.sock

step "create a network"
run "$DISCOVERY_BIN" network create web --subnet 198.19.1.0/24
run "$DISCOVERY_BIN" network ls

step "two container namespaces, attached to it"
ip netns add demo-c1; ip netns add demo-c2
run "$DISCOVERY_BIN" attach --netns demo-c1 --network web --name c1 --alias frontend
run "$DISCOVERY_BIN" attach --netns demo-c2 --network web --name c2 --service api
run "$DISCOVERY_BIN" endpoints
IP1=$("$DISCOVERY_BIN" endpoints --json | python3 -c 'import json,sys; print([e["ip"] for e in json.load(sys.stdin) if e["name"]=="c1"][0])')
IP2=$("$DISCOVERY_BIN" endpoints --json | python3 -c 'import json,sys; print([e["ip"] for e in json.load(sys.stdin) if e["name"]=="c2"][0])')

step "they ping each other over br0"
run ip netns exec demo-c1 ping -c 2 -W 2 "$IP2"
run ip netns exec demo-c2 ping -c 2 -W 2 "$IP1"
echo "-- br0 in the network's namespace demo-h1-web:"
ip -n demo-h1-web -br link show master br0

step "names resolve through the embedded DNS at 127.0.0.11 in each sandbox"
run ip netns exec demo-c1 dig +short @127.0.0.11 c2
run ip netns exec demo-c2 dig +short @127.0.0.11 frontend
run ip netns exec demo-c1 getent hosts api
echo "-- /etc/netns/demo-c1/resolv.conf:"; cat /etc/netns/demo-c1/resolv.conf

step "metrics (http://198.18.0.1:9653/metrics, discovery_* only)"
"$LAB" exec 1 curl -s http://198.18.0.1:9653/metrics | grep -E '^discovery_' | grep -v '_bucket' 

step "detach and clean up"
run "$DISCOVERY_BIN" detach --netns demo-c1 --network web
run "$DISCOVERY_BIN" detach --netns demo-c2 --network web
run "$DISCOVERY_BIN" network rm web
echo; echo "demo finished OK"
