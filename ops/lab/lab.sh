#!/usr/bin/env bash
# A multi-host Discovery cluster on one machine: every "host" is a network namespace on a shared underlay bridge
# (198.18.0.0/24), running its own agent with its own socket, data directory and metrics address.
#
#   ops/lab/lab.sh up N      create hosts h1..hN and start one agent on each
#   ops/lab/lab.sh down      stop the agents and remove every namespace and file of the lab
#   ops/lab/lab.sh status    show hosts, agents and their sockets
#   ops/lab/lab.sh exec I CMD...   run CMD inside host I's namespace
#
# Environment: LAB_PREFIX (default "dlab-", prefixes every namespace), LAB_DIR (default /tmp/discovery-lab/$LAB_PREFIX),
# DISCOVERY_BIN (default: the binary published by scripts/build.sh), LAB_AGENT_ARGS (extra agent flags),
# LAB_READY_SECONDS (default 10: how long each agent may take to become ready; many agents starting at once need more).
# Agents run under `nsenter --net` rather than `ip netns exec`: the latter gives the process a private mount
# namespace, so the namespaces the agent bind-mounts under /run/netns would be invisible to everyone else.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
P=${LAB_PREFIX:-dlab-}
D=${LAB_DIR:-/tmp/discovery-lab/$P}
BIN=${DISCOVERY_BIN:-$ROOT/.out/bin/discovery}
U=${P}u

host_ip() { echo "198.18.0.$1"; }
ns() { echo "${P}h$1"; }
sock() { echo "$D/h$1/agent.sock"; }

up() {
  local n=${1:?usage: lab.sh up N}
  [ -x "$BIN" ] || { echo "lab: $BIN not found; run scripts/build.sh first" >&2; exit 1; }
  mkdir -p "$D"
  if ! ip netns list | grep -qx "$U\( .*\)\?"; then
    ip netns add "$U"
    ip -n "$U" link set lo up
    ip -n "$U" link add ubr0 type bridge
    ip -n "$U" link set ubr0 up
  fi
  for i in $(seq 1 "$n"); do
    local h; h=$(ns "$i")
    if ! ip netns list | grep -qx "$h\( .*\)\?"; then
      ip netns add "$h"
      ip -n "$h" link set lo up
      ip -n "$U" link add "u-h$i" type veth peer name eth0 netns "$h"
      ip -n "$U" link set "u-h$i" master ubr0 up
      ip -n "$h" addr add "$(host_ip "$i")/24" dev eth0
      ip -n "$h" link set eth0 up
    fi
    start_agent "$i"
  done
  for i in $(seq 1 "$n"); do wait_ready "$i"; done
  status
}

start_agent() {
  local i=$1 h; h=$(ns "$i")
  mkdir -p "$D/h$i"
  if [ -f "$D/h$i/pid" ] && kill -0 "$(cat "$D/h$i/pid")" 2>/dev/null; then return; fi
  # Every host but the first joins h1; the agent retries until h1 answers.
  local join=""; [ "$i" -gt 1 ] && join="--join $(host_ip 1)"
  # shellcheck disable=SC2086
  nsenter --net="/run/netns/$h" "$BIN" agent --node "h$i" --data-dir "$D/h$i/data" --api-socket "$(sock "$i")" \
    --metrics "$(host_ip "$i"):9653" --netns-prefix "$P" --advertise "$(host_ip "$i")" $join ${LAB_AGENT_ARGS:-} \
    >>"$D/h$i/agent.log" 2>&1 &
  echo $! > "$D/h$i/pid"
}

wait_ready() {
  local i=$1
  for _ in $(seq 1 $(( ${LAB_READY_SECONDS:-10} * 10 ))); do
    if nsenter --net="/run/netns/$(ns "$i")" curl -sf "http://$(host_ip "$i"):9653/readyz" >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$(cat "$D/h$i/pid")" 2>/dev/null; then
      echo "lab: agent h$i exited; its log:" >&2; tail -20 "$D/h$i/agent.log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "lab: agent h$i not ready after ${LAB_READY_SECONDS:-10} s; its log:" >&2; tail -20 "$D/h$i/agent.log" >&2; return 1
}

stop_agent() {
  local i=$1 pid
  [ -f "$D/h$i/pid" ] || return 0
  pid=$(cat "$D/h$i/pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$D/h$i/pid"
}

down() {
  for f in "$D"/h*/pid; do [ -e "$f" ] || continue; i=${f#"$D"/h}; stop_agent "${i%/pid}"; done
  # Every namespace of the lab carries the prefix: hosts, the underlay, overlays and containers the agents made.
  for n in $(ip netns list | awk '{print $1}' | grep "^$P" || true); do ip netns del "$n"; done
  rm -rf "$D" /etc/netns/"$P"*
}

status() {
  for f in "$D"/h*/pid; do
    [ -e "$f" ] || continue
    local i=${f#"$D"/h}; i=${i%/pid}
    local state=stopped; kill -0 "$(cat "$f")" 2>/dev/null && state=running
    printf 'h%s  ns=%s  underlay=%s  agent=%s  api=%s  metrics=http://%s:9653/metrics\n' \
      "$i" "$(ns "$i")" "$(host_ip "$i")" "$state" "$(sock "$i")" "$(host_ip "$i")"
  done
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  start) start_agent "${2:?host}"; wait_ready "$2" ;;
  stop) stop_agent "${2:?host}" ;;
  exec) shift; i=$1; shift; exec nsenter --net="/run/netns/$(ns "$i")" "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
