#!/usr/bin/env bash
# The main job: a 3-host Discovery lab on this machine with real podman containers. Installs what is missing (podman,
# runc, the CNI plugins, a busybox image source), builds the agent, starts one agent on each of three lab hosts
# (network namespaces on a 198.18.0.0/24 underlay) which find each other over gossip, creates the network demo-web and
# installs it for podman (`discovery network create --cni`: the `discovery` binary is the CNI plugin). Then podman runs
# a container on every host: they resolve each other by name and alias at 127.0.0.11 and talk across VXLAN; a
# container's `-p 8080:80` is published on every host (ingress) and reached with curl; a service web gets three podman
# tasks through a service conflist (demo-web-svc) and is reached by its VIP and on port 8081 of every host; then `discovery members`, the
# metrics, and `podman rm -f` removing a name everywhere. Each lab host is one podman "host": podman runs under
# `nsenter --net` into it. Everything is prefixed "demo-" and removed at the end (KEEP=1 leaves it running).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ "$(id -u)" = 0 ] || { echo "demo: run as root (it creates network namespaces and runs podman)" >&2; exit 1; }
"$ROOT/scripts/deps.sh"
"$ROOT/scripts/build.sh"
# Forwarded (non-local) names go to 127.0.0.1:9 inside each lab host, where nothing listens: no demo query leaves the machine.
export LAB_PREFIX=demo- DISCOVERY_BIN="$ROOT/.out/bin/discovery" LAB_AGENT_ARGS="--dns-upstream 127.0.0.1:9"
LAB="$ROOT/ops/lab/lab.sh"
D=/tmp/discovery-lab/demo-
NET=demo-web
IMAGE=localhost/demo-bb:1
LABEL=io.discovery.demo=1
# Podman for lab host h: its CNI calls go to h's agent. conmon starts the cleanup process (which runs the CNI DEL of a
# container that stops) with only conmon_env_vars, so each host gets a containers.conf carrying the socket too.
pod() { local h=$1; shift; DISCOVERY_API_SOCKET="$D/h$h/agent.sock" CONTAINERS_CONF="$D/h$h/containers.conf" \
  nsenter --net="/run/netns/demo-h$h" podman "$@"; }
SVCNET=demo-web-svc  # the service conflist: its containers are tasks of the service web on $NET
host_of() { case $1 in c1|web1) echo 1 ;; c2|hello|web2) echo 2 ;; *) echo 3 ;; esac; }
cleanup() {
  [ "${KEEP:-0}" = 1 ] && return
  # Containers first, on their own hosts while the agents run, so the plugin's DEL reaches them.
  for c in $(podman ps -a --filter "label=$LABEL" --format '{{.Names}}' 2>/dev/null); do
    [ -f "$D/h$(host_of "$c")/containers.conf" ] && pod "$(host_of "$c")" rm -f -t 0 "$c" >/dev/null 2>&1 || podman rm -f -t 0 "$c" >/dev/null 2>&1 || true
  done
  podman image rm -f "$IMAGE" >/dev/null 2>&1 || true
  "$DISCOVERY_BIN" cni uninstall "$NET" >/dev/null 2>&1 || true
  "$DISCOVERY_BIN" cni uninstall "$SVCNET" >/dev/null 2>&1 || true
  rm -rf "/var/lib/cni/networks/$NET" /var/lib/cni/results/"$NET"-* "/var/lib/cni/networks/$SVCNET" /var/lib/cni/results/"$SVCNET"-*
  "$LAB" down
  ip netns del demo-out 2>/dev/null || true
}
trap cleanup EXIT
cleanup >/dev/null 2>&1 || true
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
on() { local h=$1; shift; printf '$ [h%s] discovery %s\n' "$h" "$*"; "$DISCOVERY_BIN" --api-socket "$D/h$h/agent.sock" "$@"; }
quiet() { local h=$1; shift; "$DISCOVERY_BIN" --api-socket "$D/h$h/agent.sock" "$@"; }
show() { local h=$1; shift; printf '$ [h%s] podman %s\n' "$h" "$*"; pod "$h" "$@"; }
# A busybox httpd container whose page says its name.
web() { local h=$1 name=$2; shift 2; webon "$NET" "$h" "$name" "$@"; }
webon() { local net=$1 h=$2 name=$3; shift 3
  printf '$ [h%s] podman run -d --name %s --network %s %s %s httpd …\n' "$h" "$name" "$net" "$*" "$IMAGE"
  pod "$h" run -d --name "$name" --label "$LABEL" --network "$net" "$@" "$IMAGE" \
    sh -c "echo $name > /var/www/index.html && exec httpd -f -p 80 -h /var/www" | cut -c1-12; }

step "three lab hosts, one agent each; h2 and h3 join h1 over gossip"
"$LAB" up 3
for _ in $(seq 1 100); do [ "$(quiet 1 members --json | grep -c '"alive"')" = 3 ] && break; sleep 0.1; done
on 1 members
for h in 1 2 3; do
  sed "s|^\[engine\]$|[engine]\nconmon_env_vars = [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", \"DISCOVERY_API_SOCKET=$D/h$h/agent.sock\"]|" \
    /etc/containers/containers.conf > "$D/h$h/containers.conf"
done
podman import -q /var/cache/discovery/busybox-rootfs.tar "$IMAGE" >/dev/null

step "create the network on h1 and install it for podman; every host learns it"
# No --api-socket for the CNI side: the conflist is shared by the three podman "hosts" of this one machine, and each
# podman run here passes its own host's socket in DISCOVERY_API_SOCKET. `-p` ports are published on every host (ingress).
on 1 network create "$NET" --subnet 198.19.1.0/24 >/dev/null
for _ in $(seq 1 50); do quiet 3 network inspect "$NET" >/dev/null 2>&1 && break; sleep 0.1; done
printf '$ discovery cni install %s --publish-mode ingress\n' "$NET"
"$DISCOVERY_BIN" cni install "$NET" --publish-mode ingress
cat "/etc/cni/net.d/$NET.conflist"
on 3 network ls

step "a podman container on each host: podman run --network $NET --network-alias …"
for h in 1 2 3; do web "$h" "c$h" --network-alias "alias$h" --network-alias api; done
for _ in $(seq 1 50); do [ "$(quiet 2 endpoints --json | grep -c '"name"')" -ge 3 ] && break; sleep 0.1; done
on 2 endpoints
ip_of() { quiet 1 endpoints --json | python3 -c "import json,sys; print([e['ip'] for e in json.load(sys.stdin) if e['name']=='$1'][0])"; }
show 1 exec c1 cat /etc/resolv.conf

step "they resolve each other at 127.0.0.11 (nslookup) and fetch each other's page across VXLAN (wget)"
for from in 1 2 3; do for to in 1 2 3; do
  [ $from = $to ] && continue
  printf '  c%s -> c%s: nslookup c%s = %-13s alias%s = %-13s wget http://c%s/ = %s\n' "$from" "$to" "$to" \
    "$(pod "$from" exec "c$from" nslookup "c$to" 2>/dev/null | awk '/^Name:/{n=1} n&&/^Address/{print $NF; exit}')" "$to" \
    "$(pod "$from" exec "c$from" nslookup "alias$to" 2>/dev/null | awk '/^Name:/{n=1} n&&/^Address/{print $NF; exit}')" "$to" \
    "$(pod "$from" exec "c$from" timeout 3 wget -q -O - "http://c$to/")"
done; done
printf '  c1: nslookup api (the alias all three share) = %s\n' \
  "$(pod 1 exec c1 nslookup api | awk '/^Name:/{n=1} n&&/^Address/{print $NF}' | sort | tr '\n' ' ')"
echo "-- peers programmed into vxlan0 on h3 (neighbor + FDB):"
ip -n demo-h3-"$NET" neigh show dev vxlan0 2>/dev/null || ip netns list | grep '^demo-h3' | head -3
bridge -n demo-h3-"$NET" fdb show dev vxlan0 2>/dev/null | grep dst || true

step "a published port: podman run -p 8080:80 on h2, the container hello; reached with curl on every host's address"
web 2 hello -p 8080:80
for _ in $(seq 1 50); do quiet 1 service ls --json 2>/dev/null | grep -q '"published": *8080' && break; sleep 0.1; done
on 1 service ls
ip netns add demo-out
ip -n demo-u link add u-out type veth peer name eth0 netns demo-out
ip -n demo-u link set u-out master ubr0 up
ip -n demo-out addr add 198.18.0.100/24 dev eth0; ip -n demo-out link set eth0 up
for n in 1 2 3; do
  for _ in $(seq 1 50); do ip netns exec demo-out curl -s -m 2 "http://198.18.0.$n:8080/" >/dev/null && break; sleep 0.1; done
  printf '  outside client (198.18.0.100) $ curl http://198.18.0.%s:8080/ -> %s\n' "$n" "$(ip netns exec demo-out curl -s -m 2 "http://198.18.0.$n:8080/")"
done
printf '  c3 $ wget http://hello/ -> %s\n' "$(pod 3 exec c3 timeout 3 wget -q -O - http://hello/)"

step "a service with podman tasks: service web (VIP, published on 8081 through the ingress mesh), conflist $SVCNET"
# The service publishes the port; its tasks are podman containers run on the service conflist (they take no -p).
on 1 service create web --network "$NET" --publish 8081:80 >/dev/null
printf '$ discovery cni install %s --network %s --service web\n' "$SVCNET" "$NET"
"$DISCOVERY_BIN" cni install "$SVCNET" --network "$NET" --service web
grep -E '"(name|network|service)"' "/etc/cni/net.d/$SVCNET.conflist"
for h in 1 2 3; do webon "$SVCNET" "$h" "web$h"; done
tasks() { quiet "$1" service inspect web | python3 -c "import json,sys; print(len(json.load(sys.stdin)['backends']))"; }
for _ in $(seq 1 50); do [ "$(tasks 1)" = 3 ] && [ "$(tasks 2)" = 3 ] && [ "$(tasks 3)" = 3 ] && break; sleep 0.1; done
on 1 service ls
printf '  c3 $ nslookup web -> %s  (the VIP); tasks.web -> %s\n' \
  "$(pod 3 exec c3 nslookup web 2>/dev/null | awk '/^Name:/{n=1} n&&/^Address/{print $NF; exit}')" \
  "$(pod 3 exec c3 nslookup tasks.web 2>/dev/null | awk '/^Name:/{n=1} n&&/^Address/{print $NF}' | sort | tr '\n' ' ')"
# Until each of the three tasks has answered (each request is a new connection, balanced at random), at most 60 tries.
until_all() { local what=$1 seen="" out; shift
  for _ in $(seq 1 60); do
    out=$("$@" 2>/dev/null || true)
    case "$out" in web[123]) case " $seen " in *" $out "*) ;; *) seen="$seen $out" ;; esac ;; esac
    [ "$(echo $seen | wc -w)" = 3 ] && break
  done
  printf '  %s -> answered by:%s\n' "$what" "$(echo "$seen" | tr ' ' '\n' | sort | tr '\n' ' ')"
  [ "$(echo $seen | wc -w)" = 3 ] || { echo "demo: $what did not reach all three tasks" >&2; exit 1; }; }
until_all "c3 \$ wget http://web/ (the VIP, by name)" pod 3 exec c3 timeout 3 wget -q -O - http://web/
for n in 1 2 3; do
  until_all "outside client \$ curl http://198.18.0.$n:8081/" ip netns exec demo-out curl -s -m 2 "http://198.18.0.$n:8081/"
done

step "members and metrics of h1 (http://198.18.0.1:9653/metrics, a selection)"
on 1 members
"$LAB" exec 1 curl -s http://198.18.0.1:9653/metrics \
  | grep -E '^discovery_(networks|endpoints|overlay_peers|gossip_members|catalog_entries|api_requests_total|dns_queries_total|build_info|lb_services|lb_backends)' | head -40

step "podman rm -f c1 on h1: its name is gone on h3"
show 1 rm -f -t 0 c1 >/dev/null
for _ in $(seq 1 50); do quiet 3 endpoints --json | grep -q '"c1"' || break; sleep 0.1; done
# The full name: a short name that is not local is forwarded upstream (nowhere, in this lab) and fails as SERVFAIL.
printf '  c3: nslookup c1.%s.discovery.internal -> %s\n' "$NET" "$(pod 3 exec c3 nslookup "c1.$NET.discovery.internal" 2>&1 | grep -E "can't find|NXDOMAIN|Address" | tail -1)"

step "Prometheus and Grafana"
cat <<TXT
  Every agent serves Prometheus metrics at http://198.18.0.N:9653/metrics inside its lab host. To scrape this lab,
  keep it running (KEEP=1 ./scripts/demo.sh) and start Prometheus inside h1, which reaches all three over the underlay:
    LAB_PREFIX=demo- ops/lab/lab.sh exec 1 prometheus --config.file=ops/prometheus/prometheus.yml \\
      --storage.tsdb.path=/tmp/discovery-lab/prometheus --web.listen-address=127.0.0.1:9090 &
    LAB_PREFIX=demo- ops/lab/lab.sh exec 1 promtool query instant http://127.0.0.1:9090 'up{job="discovery"}'
  ops/prometheus/ also holds the alert rules (discovery-rules.yml). The Grafana dashboard is ops/grafana/discovery.json:
  import it in Grafana (Dashboards > Import) with that Prometheus as its data source.
  Afterwards: podman rm -f \$(podman ps -aq --filter label=$LABEL); discovery cni uninstall $NET; discovery cni uninstall $SVCNET;
  LAB_PREFIX=demo- ops/lab/lab.sh down
TXT
echo; echo "demo finished OK"
