#!/usr/bin/env bash
# fs-meta-instructions.sh — the daemon's CPU instructions per create, stat and delete of
# FILES empty files (Python loops on a single-copy mount), counted by callgrind. Wall-clock
# figures on a 2-vCPU VM with steal time swing ±40 % between rounds; instruction counts
# move only a few per cent (the namespace batch commits every 10 ms, so a slower machine
# shares each commit among fewer operations): compare binaries side by side, in one run.
# BASELINE=PATH measures another berth-engine binary too (say, a release build of the
# commit before a change). Needs valgrind.
#   scripts/fs-meta-instructions.sh                   # FILES=1000
#   BASELINE=/tmp/berth-old scripts/fs-meta-instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install -y valgrind" >&2; exit 2; }
FILES=${FILES:-1000}
W=${WORK:-/var/tmp/berth-meta-instructions}
swift build -c release --product berth-engine >/dev/null
cleanup() { for m in "$W"/*/mnt; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done; true; }
trap cleanup EXIT
cleanup; rm -rf "$W"; mkdir -p "$W"
measure() {  # TAG BINARY
  local tag=$1 dir="$W/$1"
  mkdir -p "$dir/mnt"
  # valgrind 3.19 cannot read the toolchain's DWARF 5: a copy without debug info, symbols kept.
  cp "$2" "$dir/berth-engine" && strip -g "$dir/berth-engine"
  "$dir/berth-engine" init "$dir/state" --capacity $((64 << 30)) --chunk $((4 << 20)) --pgs 256 >/dev/null
  # No spin (FuseLoop): the leader's reads while it waits for the next request would count.
  # No io_uring (BERTH_FUSE_RING=0): under valgrind a mount offered the rings hung at the
  # first request (with the fuse module's enable_uring on).
  BERTH_FUSE_RING=0 BERTH_FUSE_SPIN_US=0 valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$dir/berth-engine" mount "$dir/state" v "$dir/mnt" \
    --class remote-disk --size $((16 << 30)) >"$dir/mount.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do mountpoint -q "$dir/mnt" && break; sleep 0.2; done
  python3 scripts/fs-workloads.py ops "$dir/mnt/warm" 200 create >/dev/null
  python3 scripts/fs-workloads.py ops "$dir/mnt/warm" 200 delete >/dev/null
  callgrind_control -z "$pid" >/dev/null 2>&1
  local op line=""
  for op in create stat delete; do
    python3 scripts/fs-workloads.py ops "$dir/mnt/m" "$FILES" "$op" >/dev/null
    sleep 0.5  # the batch commit of the last changes belongs to this phase
    callgrind_control -d "$op" "$pid" >/dev/null 2>&1
  done
  umount "$dir/mnt"; wait "$pid" || true
  for op in create stat delete; do
    local f; f=$(grep -l "^desc: Trigger: dump $op$" "$dir"/cg.out.* | head -1)
    line+=$(awk -v n="$FILES" -v op="$op" '/^summary:/ {printf "  %s %7.0f", op, $2 / n}' "$f")
  done
  echo "$tag$line   (instructions per operation)"
}
measure berth .build/release/berth-engine
[ -n "${BASELINE:-}" ] && measure berth-base "$BASELINE"
true
