#!/usr/bin/env bash
# Installs what Discovery needs on a Debian 12 machine. Idempotent: it installs
# only the packages that are missing, and checks the .NET SDK instead of guessing.
set -euo pipefail
PKGS=(iproute2 nftables libnftables1 dnsutils serf busybox curl conntrack knot knot-dnsutils
      dnsperf unbound python3-msgpack tcpdump procps iputils-ping libc-bin strace prometheus
      clang zlib1g-dev    # Native AOT (the `discovery` CLI): clang links, zlib is a runtime dependency
      apache2-utils iptables   # bench/Lb: ab (connection rate), iptables-nft-restore (its reference); clang compiles its server
      podman runc containernetworking-plugins)   # real containers (tests, bench/cni, demo): runc because crun fails here
PKGS+=(systemd libcap2-bin python3)   # ops tests: systemd-analyze verify, capsh, the notify-socket listener
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || apt-get update
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts unbound, knot and prometheus as services on install; our tests start their own (prometheus is
  # here for promtool, which checks the /metrics text).
  for s in unbound knot prometheus; do systemctl disable --now "$s" >/dev/null 2>&1 || true; done
fi
"$(dirname "$0")/podman-setup.sh"
if ! command -v dotnet >/dev/null 2>&1; then
  echo "deps: the .NET 10 SDK is required (dotnet not on PATH). Install it from https://dot.net and retry." >&2
  exit 1
fi
if ! dotnet --list-sdks | grep -q '^10\.'; then
  echo "deps: .NET SDK 10.x required; found: $(dotnet --list-sdks | tr '\n' ' ')" >&2
  exit 1
fi
