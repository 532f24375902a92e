#!/usr/bin/env bash
# fs-ab.sh OLD NEW TEST [CLASS] [ROUNDS] — two berth-engine binaries (say, release builds of
# the commits before and after a change) alternating over one workload on fresh volumes of
# CLASS (default remote-disk; 4 MiB chunks), ROUNDS times (default 3), so that each pair of
# figures are neighbours in time on a VM whose disk and CPU drift:
#   fsync-stall   creates + stats while another process rewrites 16 MiB and fsyncs in a loop
#                 (8 s): their latency p50 / p99 / max (fs-workloads.py beside-fsync)
#   rm            rm of a 1 GiB fsynced file, and the worst create in the same directory
#                 meanwhile (fs-workloads.py beside-rm)
#   randread      fio random 4 KiB reads of a 1 GiB file, cold cache, 8 s: IOPS, mean
#                 latency and the daemon's CPU per read (from /proc)
#   seqread       fio sequential read, 1 MiB blocks, of a 1 GiB file, cold cache: MB/s
#   randwrite     fio random 4 KiB writes, 4 jobs of 32 MiB, fsync every 16 writes: IOPS
#   seqwrite      fio sequential write, 1 MiB blocks, 1 GiB, fsync at the end (fs-bench's): MB/s
#   meta          fs-workloads.py meta: creates, stats, deletes of 5,000 files, tarball
#   deletes       fs-workloads.py delete-latency: 10,000 files created, stat'ed, unlinked one
#                 by one on a fresh volume: deletes/s and the unlinks' latency tail
# OLD_CHUNK / NEW_CHUNK (bytes, default 4 MiB) set each slot's chunk size, so one binary can be
# compared with itself at two chunk sizes: OLD_CHUNK=$((4<<20)) NEW_CHUNK=$((8<<20)) fs-ab.sh B B seqwrite ec-4-2
# OLD_ARGS / NEW_ARGS add mount options to each slot, so one binary can be compared with itself
# with and without a feature: NEW_ARGS=--journal fs-ab.sh B B seqwrite
# The second slot has read low in its first round whichever binary sat there (session 12):
# for sequential figures, run both orders (OLD NEW, then NEW OLD).
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${1:?usage: fs-ab.sh OLD NEW TEST [CLASS] [ROUNDS]}; NEW=${2:?}; TEST=${3:?}
CLASS=${4:-remote-disk}; ROUNDS=${5:-3}
W=${WORK:-/var/tmp/berth-fs-ab}
command -v fio >/dev/null || { echo "fio missing: apt-get install -y fio" >&2; exit 2; }
cleanup() { for m in "$W"/*/mnt; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done; true; }
trap cleanup EXIT
cleanup; rm -rf "$W"; mkdir -p "$W"
[ "$TEST" = meta ] && python3 scripts/fs-workloads.py tarball "$W/tarball.tar"
mkdir -p "$W/bin"; cp "$OLD" "$W/bin/old"; cp "$NEW" "$W/bin/new"  # their own copies: a rebuild meanwhile changes nothing
mount_fresh() {  # TAG
  local d="$W/$1"
  mountpoint -q "$d/mnt" 2>/dev/null && umount "$d/mnt"
  rm -rf "$d"; mkdir -p "$d/mnt"
  local chunk; [ "$1" = old ] && chunk=${OLD_CHUNK:-$((4 << 20))} || chunk=${NEW_CHUNK:-$((4 << 20))}
  "$W/bin/$1" init "$d/state" --capacity $((64 << 30)) --chunk "$chunk" --pgs 256 >/dev/null
  local extra; [ "$1" = old ] && extra=${OLD_ARGS:-} || extra=${NEW_ARGS:-}
  # shellcheck disable=SC2086  # extra: options, split on purpose
  "$W/bin/$1" mount "$d/state" v "$d/mnt" --class "$CLASS" --size $((16 << 30)) $extra >/dev/null 2>&1 &
  for _ in $(seq 100); do mountpoint -q "$d/mnt" && return; sleep 0.1; done
  echo "mount of $1 failed" >&2; exit 1
}
# The newest daemon of that name: an earlier one may still be finishing its unmount.
daemon_cpu() { awk '{print $14 + $15}' "/proc/$(pgrep -n -f "$W/bin/$1 mount $W/$1/state")/stat"; }
# The 1 GiB file the read tests read (written once per volume), out of the page cache.
cold_file() {  # MOUNTPOINT
  [ -f "$1/rr.0.0" ] || fio --name=rr --directory="$1" --rw=write --bs=1m --size=1g --end_fsync=1 >/dev/null
  sync; echo 3 > /proc/sys/vm/drop_caches
}
run() {  # TAG
  local m="$W/$1/mnt"
  case "$TEST" in
    fsync-stall) python3 scripts/fs-workloads.py beside-fsync "$m" 8 16 ;;
    rm) python3 scripts/fs-workloads.py beside-rm "$m" 1024 ;;
    meta) python3 scripts/fs-workloads.py meta-line "$1" "$m/b" 5000 "$W/tarball.tar" ;;
    deletes) python3 scripts/fs-workloads.py delete-latency "$m/d" 10000 ;;
    seqwrite) fio --name=sw --directory="$m" --rw=write --bs=1M --size=1g --end_fsync=1 --ioengine=psync \
                --output-format=json | python3 -c \
                'import json,sys; print("MB/s", round(json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"] / 1e6, 1))' ;;
    randwrite) fio --name=rw --directory="$m" --rw=randwrite --bs=4k --size=32m --numjobs=4 --fsync=16 \
                 --group_reporting --output-format=json | python3 -c \
                 'import json,sys; print("IOPS", round(json.load(sys.stdin)["jobs"][0]["write"]["iops"]))' ;;
    seqread)
      cold_file "$m"
      fio --name=rr --directory="$m" --rw=read --bs=1M --size=1g --ioengine=psync --output-format=json | python3 -c \
        'import json,sys; print("MB/s", round(json.load(sys.stdin)["jobs"][0]["read"]["bw_bytes"] / 1e6, 1))' ;;
    randread)
      cold_file "$m"
      local before; before=$(daemon_cpu "$1")
      fio --name=rr --directory="$m" --rw=randread --bs=4k --size=1g --ioengine=psync --time_based --runtime=8 \
        --output-format=json > "$W/fio.json"
      python3 - "$W/fio.json" "$before" "$(daemon_cpu "$1")" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
cpu = (float(sys.argv[3]) - float(sys.argv[2])) / float(sys.argv[4]) / r["total_ios"] * 1e6
print(f"IOPS {r['iops']:.0f}  mean latency {r['clat_ns']['mean'] / 1000:.0f} us  daemon CPU {cpu:.0f} us per read")
PY
      ;;
    *) echo "unknown test $TEST" >&2; exit 2 ;;
  esac
}
# randread and seqread keep one volume per binary (the file is written once); the others start afresh.
case "$TEST" in randread|seqread) mount_fresh old; mount_fresh new ;; esac
for r in $(seq "$ROUNDS"); do
  for tag in old new; do
    case "$TEST" in randread|seqread) ;; *) mount_fresh "$tag" ;; esac
    echo "$tag round $r ($TEST, $CLASS): $(run "$tag")"
  done
done
