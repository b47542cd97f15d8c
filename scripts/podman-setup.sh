#!/usr/bin/env bash
# Makes podman usable here for the tests, bench/cni and the demo (called by scripts/deps.sh; idempotent):
#  - a busybox rootfs tar from the busybox-static package, which is downloaded and unpacked but not installed, because
#    it conflicts with the busybox package we install. Tests `podman import` it as a per-run image.
#  - /etc/containers/containers.conf (runc, cgroupfs, file events, ulimits this machine allows, CNI backend, a default
#    subnet inside 198.19/16), written only when absent or written by us before; an operator's file is left alone.
# It never runs `podman system reset`, which would delete every conflist in /etc/cni/net.d.
set -euo pipefail
CACHE=${DISCOVERY_CACHE:-/var/cache/discovery}
ROOTFS_TAR="$CACHE/busybox-rootfs.tar"
CONF=/etc/containers/containers.conf
MARK="# discovery: written by scripts/podman-setup.sh (remove this line to keep your own edits)"

busybox_rootfs() {
  [ -s "$ROOTFS_TAR" ] && return 0
  local work; work=$(mktemp -d "$CACHE/bb.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  (cd "$work" && apt-get download -qq busybox-static >/dev/null 2>&1) \
    || { apt-get update -qq >/dev/null && (cd "$work" && apt-get download -qq busybox-static >/dev/null); }
  dpkg-deb -x "$work"/busybox-static_*.deb "$work/pkg"
  local r="$work/rootfs"
  mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/var/www" "$r/proc" "$r/sys" "$r/dev"
  cp "$work/pkg/bin/busybox" "$r/bin/busybox"
  # One symlink per applet, so `sh`, `nslookup`, `wget`, `httpd` … work as plain commands.
  for a in $("$r/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\n' >"$r/etc/group"
  tar -C "$r" -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  echo "podman-setup: busybox rootfs for container images in $ROOTFS_TAR" >&2
}

containers_conf() {
  local want
  want=$(cat <<CONF
$MARK
[containers]
# podman as root asks for nofile/nproc=1048576; without CAP_SYS_RESOURCE that setrlimit fails (EPERM).
default_ulimits = [
  "nofile=4096:4096",
  "nproc=4096:4096",
]

[engine]
# crun refuses this machine's hybrid cgroup layout; runc works.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "cni"
# Keep podman's own default bridge inside the test range if anything ever creates it.
default_subnet = "198.19.88.0/24"
CONF
)
  if [ -f "$CONF" ] && ! head -1 "$CONF" | grep -qxF "$MARK"; then
    echo "podman-setup: $CONF exists and is not ours: left unchanged. Podman here needs runtime=\"runc\"," \
      "cgroup_manager=\"cgroupfs\", network_backend=\"cni\" and default_ulimits nofile/nproc 4096 (see this script)." >&2
    return 0
  fi
  if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$want" ]; then return 0; fi
  mkdir -p "$(dirname "$CONF")"
  printf '%s\n' "$want" >"$CONF.tmp" && mv "$CONF.tmp" "$CONF"
  echo "podman-setup: wrote $CONF (runc, cgroupfs, CNI backend, default subnet 198.19.88.0/24)" >&2
}

mkdir -p "$CACHE" /etc/cni/net.d /opt/cni/bin
busybox_rootfs
containers_conf
