#!/usr/bin/env bash
# fs-meta-cpu.sh OLD NEW — two berth-engine binaries side by side on single-copy mounts,
# ROUNDS alternating rounds of FILES empty-file creates then deletes from Python; per
# operation, wall µs and the daemon's CPU µs (utime + stime from /proc/PID/stat, which
# steal time does not inflate as it does wall time).
#   scripts/fs-meta-cpu.sh /tmp/berth-old .build/release/berth-engine   # ROUNDS=6 FILES=5000
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
ROUNDS=${ROUNDS:-6}; FILES=${FILES:-5000}; W=${WORK:-/var/tmp/berth-meta-cpu}
declare -A MNT PID
cleanup() { for m in "$W"/*/mnt; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done; true; }
trap cleanup EXIT
cleanup; rm -rf "$W"; mkdir -p "$W"
for tag in old new; do
  bin=$1; [ $tag = new ] && bin=$2
  mkdir -p "$W/$tag/mnt"
  "$bin" init "$W/$tag/state" --capacity $((64 << 30)) --chunk $((4 << 20)) --pgs 256 >/dev/null
  "$bin" mount "$W/$tag/state" v "$W/$tag/mnt" --class remote-disk --size $((16 << 30)) >"$W/$tag/log" 2>&1 &
  PID[$tag]=$!; MNT[$tag]=$W/$tag/mnt
done
for _ in $(seq 100); do mountpoint -q "${MNT[old]}" && mountpoint -q "${MNT[new]}" && break; sleep 0.1; done
echo "round binary   create: wall µs  cpu µs   delete: wall µs  cpu µs"
for r in $(seq "$ROUNDS"); do
  for tag in old new; do
    c=$(python3 scripts/fs-workloads.py ops "${MNT[$tag]}/r$r" "$FILES" create "${PID[$tag]}")
    d=$(python3 scripts/fs-workloads.py ops "${MNT[$tag]}/r$r" "$FILES" delete "${PID[$tag]}")
    echo "$r     $tag      $c          $d"
  done
done
