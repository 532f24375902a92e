#!/usr/bin/env bash
# fs-write-compare.sh — the sequential write figure of fs-bench.sh (fio, 1 MiB blocks, SIZE,
# fsync at the end), a native directory and Berth volumes of each class alternating ROUNDS
# times on the same disk, so each ratio compares neighbours in time (this VM's disk drifts
# 2-5x within minutes). Per round it prints MB/s per target and each Berth class's figure
# against native ÷ its redundancy overhead (issue 5's target: ≥ 0.80 for 3-copy and EC 4+2).
#   scripts/fs-write-compare.sh            # ROUNDS=3 SIZE=1g; ENGINE=PATH for another binary
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
dpkg -s fio >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null; }
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-1g}
W=${WORK:-/var/tmp/berth-write-compare}
# ENGINE=PATH runs another berth-engine binary (say, a release build of an earlier commit).
if [ -z "${ENGINE:-}" ]; then swift build -c release --product berth-engine >/dev/null; fi
E=${ENGINE:-.build/release/berth-engine}
targets="native berth-r3 berth-ec42 berth-single"
cleanup() { for m in "$W"/mnt/*; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done; true; }
trap cleanup EXIT
cleanup; rm -rf "$W"; mkdir -p "$W/mnt" "$W/native"
"$E" init "$W/state" --capacity $((64 << 30)) --chunk $((4 << 20)) --pgs 256 >/dev/null
for t in berth-r3 berth-ec42 berth-single; do
  class=${t#berth-}; class=${class/r3/replicated-3}; class=${class/ec42/ec-4-2}; class=${class/single/remote-disk}
  mkdir -p "$W/mnt/$t"
  "$E" mount "$W/state" "$t" "$W/mnt/$t" --class "$class" --size $((16 << 30)) >/dev/null &
done
for t in berth-r3 berth-ec42 berth-single; do
  for _ in $(seq 100); do mountpoint -q "$W/mnt/$t" && break; sleep 0.1; done
done
reporting=/sys/module/page_reporting/parameters/min_free_ms  # see docs/storage.md, "Benchmark"
[ -r "$reporting" ] && echo "free page reporting min_free_ms: $(cat "$reporting")"
dir() { [ "$1" = native ] && echo "$W/native" || echo "$W/mnt/$1"; }
for r in $(seq "$ROUNDS"); do
  line="round $r:"
  declare -A mbs=()
  for t in $targets; do
    d=$(dir "$t")/r$r; mkdir -p "$d"
    mbs[$t]=$(fio --output-format=json --name=sw --directory="$d" --rw=write --bs=1M --size="$SIZE" --end_fsync=1 --ioengine=psync \
      | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["jobs"][0]["write"]["bw_bytes"] / 1e6, 1))')
    rm -rf "$d"
    line="$line  $t ${mbs[$t]}"
  done
  echo "$line MB/s"
  python3 -c "
n, r3, ec, single = $(echo "${mbs[native]}, ${mbs[berth-r3]}, ${mbs[berth-ec42]}, ${mbs[berth-single]}")
print(f'  vs native ÷ overhead: berth-r3 {r3 / (n / 3):.2f}  berth-ec42 {ec / (n / 1.5):.2f}  berth-single {single / n:.2f}')"
done
