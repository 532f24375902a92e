#!/usr/bin/env bash
# fs-read-instructions.sh [BINARY...] — the daemon's CPU instructions per random 4 KiB read
# of a 1 GiB file on a single-copy mount (cold cache, READS reads by fio, seeded offsets),
# counted by callgrind: the whole run minus a run that serves no read (start-up, unmount),
# divided by READS. Steady where wall time on a 2-vCPU VM is not; compare binaries side by
# side. Without arguments: this tree's release build. Needs valgrind and fio.
#   scripts/fs-read-instructions.sh /tmp/berth-old .build/release/berth-engine
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install -y valgrind" >&2; exit 2; }
command -v fio >/dev/null || { echo "fio missing: apt-get install -y fio" >&2; exit 2; }
READS=${READS:-2000}
W=${WORK:-/var/tmp/berth-read-instructions}
if [ $# -eq 0 ]; then swift build -c release --product berth-engine >/dev/null; set -- .build/release/berth-engine; fi
cleanup() { for m in "$W"/*/mnt; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done; true; }
trap cleanup EXIT
cleanup; rm -rf "$W"; mkdir -p "$W"
n=0
for binary in "$@"; do
  n=$((n + 1)); d="$W/$n"; mkdir -p "$d/mnt"
  # valgrind 3.19 cannot read the toolchain's DWARF 5: a copy without debug info, symbols kept.
  cp "$binary" "$d/berth-engine" && strip -g "$d/berth-engine"
  "$d/berth-engine" init "$d/state" --capacity $((64 << 30)) --chunk $((4 << 20)) --pgs 256 >/dev/null
  serve() {  # OUT [valgrind...]: mounts (under the given wrapper) and waits for the mount
    local out=$1; shift
    "$@" "$d/berth-engine" mount "$d/state" v "$d/mnt" --class remote-disk --size $((16 << 30)) >"$d/$out.log" 2>&1 &
    for _ in $(seq 600); do mountpoint -q "$d/mnt" && return; sleep 0.2; done
    echo "mount failed: $d/$out.log" >&2; exit 1
  }
  counted() {  # READS_TO_DO: instructions of a whole mount that serves them
    # No io_uring: under valgrind a mount offered the rings hung at its first request.
    serve "cg$1" env BERTH_FUSE_RING=0 valgrind --tool=callgrind --callgrind-out-file="$d/cg.$1"
    local pid; pid=$(pgrep -f "callgrind-out-file=$d/cg.$1")
    sync; echo 3 > /proc/sys/vm/drop_caches
    [ "$1" -gt 0 ] && fio --name=f --directory="$d/mnt" --rw=randread --bs=4k --size=1g --ioengine=psync \
      --number_ios="$1" --randseed=7 >/dev/null
    umount "$d/mnt"; while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    grep -E '^(summary|totals):' "$d/cg.$1" | head -1 | awk '{print $2}'
  }
  serve write
  fio --name=f --directory="$d/mnt" --rw=write --bs=1m --size=1g --end_fsync=1 >/dev/null
  umount "$d/mnt"; sleep 1
  idle=$(counted 0); busy=$(counted "$READS")
  printf '%-50s %8d instructions per random 4 KiB read\n' "$binary" $(( (busy - idle) / READS ))
done
