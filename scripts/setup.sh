#!/usr/bin/env bash
# Installs what building Berth needs on Debian 12, and only what is missing.
# Sourced by scripts/run.sh and scripts/test.sh; safe to run again.
set -euo pipefail

# System libraries the package links against (grows as modules land).
# iproute2, nftables: the network-namespace test cluster (scripts/cluster.sh, Tests/ClusterTests).
# postgresql: the PostgreSQL metadata backend's tests start servers of their own (Tests/TestSupport/TestPostgres.swift).
BERTH_APT_PACKAGES=(pkg-config libisal-dev libsqlite3-dev fuse3 libfuse3-dev liburing-dev acl iproute2 nftables postgresql)

need=()
for p in "${BERTH_APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "[setup] installing: ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The Swift toolchain (6.1 or later). This machine kind ships it in /opt/swift.
if ! command -v swift >/dev/null 2>&1; then
  for dir in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
    [ -x "$dir/swift" ] && export PATH="$dir:$PATH" && break
  done
fi
command -v swift >/dev/null 2>&1 || { echo "[setup] no Swift toolchain found: install Swift 6.1+ (swift.org) and put it on PATH" >&2; exit 2; }
