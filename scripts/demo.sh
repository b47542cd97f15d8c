#!/usr/bin/env bash
# The main job: a 3-host Discovery lab on this machine. Installs what is missing, builds the agent, starts one agent
# on each of three lab hosts (network namespaces on a 198.18.0.0/24 underlay) which find each other over gossip,
# creates a network, attaches a container on every host, and shows them resolving each other at 127.0.0.11 and
# pinging across VXLAN; then `discovery members` and the metrics. Everything lives in namespaces prefixed "demo-"
# and is removed at the end (KEEP=1 leaves it running; remove it later with `LAB_PREFIX=demo- ops/lab/lab.sh down`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces)" >&2; exit 1; }
"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh"
# Forwarded (non-local) names go to 127.0.0.1:9 inside each lab host, where nothing listens: no demo query leaves the machine.
export LAB_PREFIX=demo- DISCOVERY_BIN="$ROOT/.out/bin/discovery" LAB_AGENT_ARGS="--dns-upstream 127.0.0.1:9"
LAB="$ROOT/ops/lab/lab.sh"
D=/tmp/discovery-lab/demo-
cleanup() {
  [ "${KEEP:-0}" = 1 ] && return
  "$LAB" down
  for pid in "${HTTPD[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  for c in c1 c2 c3 t1 t2 t3 out; do ip netns del "demo-$c" 2>/dev/null || true; rm -rf "/etc/netns/demo-$c"; done
  rm -rf /tmp/discovery-lab/demo-www
}
HTTPD=()
trap cleanup EXIT
cleanup >/dev/null 2>&1 || true
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
on() { local h=$1; shift; printf '$ [h%s] discovery %s\n' "$h" "$*"; "$DISCOVERY_BIN" --api-socket "$D/h$h/agent.sock" "$@"; }
quiet() { local h=$1; shift; "$DISCOVERY_BIN" --api-socket "$D/h$h/agent.sock" "$@"; }

step "three lab hosts, one agent each; h2 and h3 join h1 over gossip"
"$LAB" up 3
for _ in $(seq 1 100); do [ "$(quiet 1 members --json | grep -c '"alive"')" = 3 ] && break; sleep 0.1; done
on 1 members

step "create a network on h1; every host learns it"
on 1 network create web --subnet 198.19.1.0/24 >/dev/null
for _ in $(seq 1 50); do quiet 3 network inspect web >/dev/null 2>&1 && break; sleep 0.1; done
on 3 network ls

step "a container on each host (a namespace attached by that host's agent)"
for h in 1 2 3; do
  ip netns add "demo-c$h"
  on "$h" attach --netns "demo-c$h" --network web --name "c$h" --alias "alias$h" >/dev/null
done
sleep 0.5
on 2 endpoints
ip_of() { quiet 1 endpoints --json | python3 -c "import json,sys; print([e['ip'] for e in json.load(sys.stdin) if e['name']=='$1'][0])"; }

step "they resolve each other at 127.0.0.11 and ping across VXLAN"
for from in 1 2 3; do for to in 1 2 3; do
  [ $from = $to ] && continue
  printf '  c%s -> c%s: dig c%s = %-14s alias%s = %-14s ' "$from" "$to" "$to" \
    "$(ip netns exec "demo-c$from" dig +short @127.0.0.11 "c$to")" "$to" "$(ip netns exec "demo-c$from" dig +short @127.0.0.11 "alias$to")"
  ip netns exec "demo-c$from" ping -c 1 -W 2 "$(ip_of "c$to")" | grep -o 'time=[0-9.]* ms'
done; done
run ip netns exec demo-c3 getent hosts c1
echo "-- peers programmed into vxlan0 on h3 (neighbor + FDB):"
ip -n demo-h3-web neigh show dev vxlan0
bridge -n demo-h3-web fdb show dev vxlan0 | grep dst

step "a service: hello, one task per host (busybox httpd), its VIP balanced in every container, port 8080 published on every host"
on 1 service create hello --network web --publish http=8080:80 >/dev/null
for _ in $(seq 1 50); do quiet 3 service inspect hello >/dev/null 2>&1 && break; sleep 0.1; done
for h in 1 2 3; do
  ip netns add "demo-t$h"
  on "$h" attach --netns "demo-t$h" --network web --name "t$h" --service hello >/dev/null
  www=/tmp/discovery-lab/demo-www/t$h; mkdir -p "$www/cgi-bin"
  # The page says which task answered and whom it saw: the client's own address, or a host's leg after a cross-host hop.
  printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\ntask t%s saw %%s\\n" "$REMOTE_ADDR"\n' "$h" > "$www/cgi-bin/index.cgi"
  chmod 755 "$www/cgi-bin/index.cgi"
  ip netns exec "demo-t$h" busybox httpd -f -p 80 -h "$www" & HTTPD+=($!)
done
on 2 service inspect hello
printf '  c1: dig hello = %s   dig tasks.hello = %s\n' "$(ip netns exec demo-c1 dig +short @127.0.0.11 hello)" \
  "$(ip netns exec demo-c1 dig +short @127.0.0.11 tasks.hello | sort | tr '\n' ' ')"
printf '  c1: dig SRV _http._tcp.hello = %s\n' "$(ip netns exec demo-c1 dig +short @127.0.0.11 SRV _http._tcp.hello)"
# Each answer is "task tN saw ADDR"; wait for the first one (the servers were just started), then ask until every one
# of the 3 randomly chosen tasks has answered (at least 9 requests; at most 60 and 20 s: fails if a task never answers).
curl_n() { local ns=$1 url=$2 answers="" n=0 end=$((SECONDS + 20))
  for _ in $(seq 1 50); do ip netns exec "$ns" curl -s -m 2 "$url" >/dev/null && break; sleep 0.1; done
  while [ "$n" -lt 60 ] && [ "$SECONDS" -lt "$end" ]; do
    n=$((n + 1))
    answers+="$(ip netns exec "$ns" curl -s -m 2 "$url" | sed 's/\[::ffff:\(.*\)\]/\1/')"$'\n'
    [ "$n" -ge 9 ] && [ "$(grep -o '^task t[0-9]*' <<<"$answers" | sort -u | wc -l)" -ge 3 ] && break
  done
  grep -v '^$' <<<"$answers" | sort | uniq -c | sed 's/^/    /'
  local tasks; tasks=$(grep -o '^task t[0-9]*' <<<"$answers" | sort -u | wc -l)
  echo "    ($n requests, $tasks of 3 tasks answered)"
  [ "$tasks" -ge 3 ] || { echo "demo: $url from $ns reached only $tasks of 3 tasks in $n requests" >&2; return 1; }; }
echo "-- from container c1 (198.19.1.x) to the VIP by name: every task, each sees c1's own address (no SNAT):"
curl_n demo-c1 http://hello/
ip netns add demo-out
ip -n demo-u link add u-out type veth peer name eth0 netns demo-out
ip -n demo-u link set u-out master ubr0 up
ip -n demo-out addr add 198.18.0.100/24 dev eth0; ip -n demo-out link set eth0 up
for n in 1 2 3; do
  echo "-- from an outside client (198.18.0.100) to the published port of h$n, http://198.18.0.$n:8080/:"
  curl_n demo-out "http://198.18.0.$n:8080/"
done

step "metrics of h1 (http://198.18.0.1:9653/metrics, a selection)"
"$LAB" exec 1 curl -s http://198.18.0.1:9653/metrics \
  | grep -E '^discovery_(networks|endpoints|overlay_peers|gossip_members|catalog_entries|netlink_ops_total|api_requests_total|dns_queries_total|build_info|lb_services|lb_backends)'

step "detach c1 on h1: its name is gone on h3"
on 1 detach --netns demo-c1 --network web >/dev/null
sleep 0.3
printf '  dig c1.web.discovery.internal on h3: %s\n' "$(ip netns exec demo-c3 dig @127.0.0.11 c1.web.discovery.internal | grep -o 'status: [A-Z]*')"
echo; echo "demo finished OK"
