#!/usr/bin/env bash
# fs-bench.sh — filesystem benchmark, all targets in one run on the same disk:
#   Berth volumes (replicated-3, ec-4-2, remote-disk, shipped 4 MiB chunks), a native
#   directory, libfuse's passthrough_ll (compiled from Debian's example source), and
#   GlusterFS 10 replica 3 / disperse 4+2 / distribute (../shared/bench/glusterfs-peer.sh).
# Per target: sequential write (1 MiB blocks, SIZE, fsync at end) and read (cold cache),
# random 4 KiB read and write IOPS (fio, RUNTIME seconds each), creates / stats / deletes
# per second for FILES files, and the time to extract a tarball of 5,000 files (1–16 KiB)
# and stat them all. Prints a table and the ratios; JSON lines go to $OUT (default
# fs-bench-results.jsonl in the work directory). Each test runs on all targets back to
# back, so a ratio compares figures measured minutes apart at most. The metadata figures
# (creates, stats, deletes, tarball) are the medians of META_ROUNDS rounds (default 3), the
# targets alternating within each round; a single round of them swung ±40 % on this VM.
# GlusterFS targets run one round (theirs take minutes; they are 10–40× slower here).
#
#   scripts/fs-bench.sh                     # SIZE=1g FILES=10000 RUNTIME=10 META_ROUNDS=3
#   SIZE=256m FILES=2000 RUNTIME=5 scripts/fs-bench.sh   # quicker
#   TARGETS="berth-r3 native passthrough" scripts/fs-bench.sh
#   FUSE_RING=0 scripts/fs-bench.sh         # Berth through /dev/fuse instead of io_uring
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
source scripts/setup.sh
source scripts/bench-lib.sh
bench_need fio glusterfs-server glusterfs-client gcc

SIZE=${SIZE:-1g}
FILES=${FILES:-10000}
RUNTIME=${RUNTIME:-10}
TARGETS=${TARGETS:-"berth-r3 berth-ec42 berth-single native passthrough gl-r3 gl-ec42 gl-dist"}
WORK=${WORK:-/var/tmp/berth-fs-bench}
OUT=${OUT:-$WORK/fs-bench-results.jsonl}
GLUSTER_SCRIPT=${GLUSTER_SCRIPT:-$REPO/../shared/bench/glusterfs-peer.sh}

say() { echo "[fs-bench] $*" >&2; }
bench_page_reporting
# FUSE over io_uring (docs/filesystem.md, "FUSE over io_uring"): the fuse module offers it
# only with enable_uring on, off by default. FUSE_RING=1 (default) turns it on for the run and
# back after; FUSE_RING=0 turns it off; FUSE_RING=keep leaves the machine's setting. Only
# Berth takes it up (libfuse 3.14 and GlusterFS's client do not ask for it).
ring_param=/sys/module/fuse/parameters/enable_uring
ring_before=$(cat "$ring_param" 2>/dev/null || true)
case "${FUSE_RING:-1}" in
  1) [ -w "$ring_param" ] && echo Y > "$ring_param" ;;
  0) [ -w "$ring_param" ] && echo N > "$ring_param" ;;
esac
say "fuse enable_uring: $(cat "$ring_param" 2>/dev/null || echo 'absent (kernel before 6.14)')"
cleanup() {
  for m in "$WORK"/mnt/*; do mountpoint -q "$m" 2>/dev/null && { umount "$m" 2>/dev/null || umount -l "$m"; }; done
  [ -n "${PIDS:-}" ] && kill $PIDS 2>/dev/null || true
  [[ " $TARGETS " == *" gl-"* ]] && bash "$GLUSTER_SCRIPT" stop "$WORK/gluster" >/dev/null 2>&1 || true
}
restore_ring() { [ -n "$ring_before" ] && [ -w "$ring_param" ] && echo "$ring_before" > "$ring_param"; true; }
trap 'cleanup; restore_ring' EXIT
cleanup
rm -rf "$WORK" && mkdir -p "$WORK"/{mnt,native,pt-src} && : > "$OUT"

say "building release binaries"
swift build -c release --product berth-engine >/dev/null
ENGINE="$REPO/.build/release/berth-engine"
gcc -O2 -o "$WORK/passthrough_ll" /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c $(pkg-config fuse3 --cflags --libs)

declare -A PATHS
PIDS=""
for t in $TARGETS; do
  case $t in
    berth-*)
      if [ ! -d "$WORK/state" ]; then "$ENGINE" init "$WORK/state" --capacity $((64 << 30)) --chunk $((4 << 20)) --pgs 256 >/dev/null; fi
      class=${t#berth-}; class=${class/r3/replicated-3}; class=${class/ec42/ec-4-2}; class=${class/single/remote-disk}
      mkdir -p "$WORK/mnt/$t"
      "$ENGINE" mount "$WORK/state" "$t" "$WORK/mnt/$t" --class "$class" --size $((16 << 30)) >/dev/null &
      PIDS="$PIDS $!"; waitmount "$WORK/mnt/$t"; PATHS[$t]="$WORK/mnt/$t" ;;
    native) PATHS[$t]="$WORK/native" ;;
    passthrough)
      mkdir -p "$WORK/mnt/pt"
      "$WORK/passthrough_ll" -f -o source="$WORK/pt-src" "$WORK/mnt/pt" &
      PIDS="$PIDS $!"; waitmount "$WORK/mnt/pt"; PATHS[$t]="$WORK/mnt/pt" ;;
    gl-*)
      if [ -z "${GL_STARTED:-}" ]; then bash "$GLUSTER_SCRIPT" start "$WORK/gluster" >/dev/null; GL_STARTED=1; fi
      PATHS[$t]="$WORK/gluster/mnt/$t" ;;
  esac
done


python3 scripts/fs-workloads.py tarball "$WORK/tarball.tar"

# Each test runs on every target back to back, so the figures a ratio compares were
# measured close together in time (this VM's disk drifts by 2-5x within minutes).
declare -A SW SR RR RW META
for t in $TARGETS; do d="${PATHS[$t]}/bench"; rm -rf "$d"; mkdir -p "$d"; done
for t in $TARGETS; do
  say "$t: sequential write $SIZE"
  SW[$t]=$(fiojson --name=sw --directory="${PATHS[$t]}/bench" --rw=write --bs=1M --size="$SIZE" --end_fsync=1 --ioengine=psync)
done
drop
for t in $TARGETS; do
  say "$t: sequential read (cold)"
  drop
  SR[$t]=$(fiojson --name=sw --directory="${PATHS[$t]}/bench" --rw=read --bs=1M --size="$SIZE" --ioengine=psync)
done
for t in $TARGETS; do
  say "$t: random 4 KiB read, write"
  d="${PATHS[$t]}/bench"
  RR[$t]=$(fiojson --name=sw --directory="$d" --rw=randread --bs=4k --size="$SIZE" --ioengine=psync --time_based --runtime="$RUNTIME")
  RW[$t]=$(fiojson --name=rw --directory="$d" --rw=randwrite --bs=4k --size=256m --ioengine=psync --time_based --runtime="$RUNTIME" --end_fsync=1)
  rm -f "$d"/sw.* "$d"/rw.*
done
META_ROUNDS=${META_ROUNDS:-3}
for r in $(seq "$META_ROUNDS"); do
  for t in $TARGETS; do
    case $t in gl-*) [ "$r" -gt 1 ] && continue ;; esac
    d="${PATHS[$t]}/bench/meta$r"
    say "$t: $FILES files, tarball (round $r of $META_ROUNDS)"
    META[$t]+="$(python3 scripts/fs-workloads.py meta "$d" "$FILES" "$WORK/tarball.tar")"$'\n'
    rm -rf "$d"
  done
done
for t in $TARGETS; do rm -rf "${PATHS[$t]}/bench"; done
for t in $TARGETS; do
  python3 - "$t" "${SW[$t]}" "${SR[$t]}" "${RR[$t]}" "${RW[$t]}" "${META[$t]}" >> "$OUT" <<'PY'
import json, statistics, sys
t, sw, sr, rr, rw = sys.argv[1], *map(json.loads, sys.argv[2:6])
rounds = [json.loads(line) for line in sys.argv[6].splitlines() if line.strip()]
meta = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
print(json.dumps({"target": t, "meta_rounds": len(rounds), "seq_write_mb_s": sw["wbw"] / 1e6, "seq_read_mb_s": sr["rbw"] / 1e6,
                  "rand_read_iops": rr["riops"], "rand_write_iops": rw["wiops"], "creates_per_s": meta["create"],
                  "stats_per_s": meta["stat"], "deletes_per_s": meta["delete"], "tar_extract_stat_s": meta["tar_s"]}))
PY
done

python3 - "$OUT" <<'PY'
import json, sys
rows = {r["target"]: r for r in map(json.loads, open(sys.argv[1]))}
cols = ["seq_write_mb_s", "seq_read_mb_s", "rand_read_iops", "rand_write_iops", "creates_per_s", "stats_per_s", "deletes_per_s", "tar_extract_stat_s"]
head = ["target", "seq W MB/s", "seq R MB/s", "rand R IOPS", "rand W IOPS", "create/s", "stat/s", "delete/s", "tar+stat s"]
print("".join(h.ljust(13) for h in head))
for t, r in rows.items():
    print(t.ljust(13) + "".join(f"{r[c]:.1f}".ljust(13) for c in cols))
def ratio(a, b, c):
    if a not in rows or b not in rows: return None
    x, y = rows[a][c], rows[b][c]
    return (y / x) if c == "tar_extract_stat_s" else (x / y)  # > 1: a is better
pairs = [("berth-single", "passthrough"), ("berth-r3", "gl-r3"), ("berth-ec42", "gl-ec42"), ("berth-single", "gl-dist")]
print()
print("ratios (first ÷ second; > 1 means the first is better)")
for a, b in pairs:
    rs = [ratio(a, b, c) for c in cols]
    if rs[0] is None: continue
    print(f"{a} vs {b}: " + ", ".join(f"{c.split('_')[0]}{'_' + c.split('_')[1] if c.count('_') > 1 else ''} {r:.2f}" for c, r in zip(cols, rs)))
if "native" in rows:
    n = rows["native"]["seq_write_mb_s"]
    for a, over in [("berth-r3", 3.0), ("berth-ec42", 1.5)]:
        if a in rows:
            print(f"{a} sequential write ÷ (native ÷ {over}): {rows[a]['seq_write_mb_s'] / (n / over):.2f}")
PY
