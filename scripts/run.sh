#!/usr/bin/env bash
# Berth's main job, from a fresh Debian machine (as root: it mounts FUSE filesystems).
# Until the CSI daemon lands (issue 6) it shows the layers that exist, end to end:
#   1. placement: movement, balance and throughput (placement-bench);
#   2. an embedded cluster of 7 hosts x 2 directory devices under a state directory, the
#      three shipped storage classes, one volume of each class mounted as a FUSE
#      filesystem, a file written, read back and checked in each;
#   3. cluster status and the capacity report per class.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# One product per call: with several --product flags only the last is built.
swift build -c release --product placement-bench
swift build -c release --product berth-engine
BIN=.build/release
$BIN/placement-bench "$@"

STATE=${BERTH_STATE:-$(mktemp -d /var/tmp/berth-demo.XXXX)}
echo
echo "== embedded cluster under $STATE"
$BIN/berth-engine init "$STATE/state" --hosts 7 --devices-per-host 2 --capacity $((4 << 30)) --chunk $((4 << 20)) --pgs 128
pids=()
cleanup() { for p in "${pids[@]:-}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null || true; }
trap cleanup EXIT
for class in replicated-3 ec-4-2 remote-disk; do
  mnt="$STATE/mnt/$class"
  mkdir -p "$mnt"
  $BIN/berth-engine mount "$STATE/state" "demo-$class" "$mnt" --class "$class" --size $((1 << 30)) &
  pids+=($!)
  for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
  head -c $((9 << 20)) /dev/urandom > "$STATE/payload-$class"
  cp "$STATE/payload-$class" "$mnt/file.bin" && sync "$mnt/file.bin"
  if cmp -s "$STATE/payload-$class" "$mnt/file.bin"; then result=ok; else result=MISMATCH; fi
  echo "$class: wrote and read back 9 MiB at $mnt/file.bin: $result ($(df -h "$mnt" | awk 'NR==2 {print $2" provisioned, "$3" used"}'))"
  [ "$result" = ok ] || exit 1
done
cleanup
trap - EXIT
echo
echo "== status"
$BIN/berth-engine status "$STATE/state"
echo "== capacity per class"
$BIN/berth-engine capacity "$STATE/state" > "$STATE/capacity.json"
python3 - "$STATE/capacity.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
gib = lambda b: f"{b / 2**30:.2f} GiB"
print(f"{'class':14}{'overhead':>9}{'raw':>12}{'used':>12}{'provisioned':>14}{'usable':>12}")
for c in report["classes"]:
    print(f"{c['name']:14}{c['overhead']:>9.1f}{gib(c['raw_bytes']):>12}{gib(c['used_bytes']):>12}"
          f"{gib(c['provisioned_bytes']):>14}{gib(c['usable_bytes']):>12}")
    for warning in c["warnings"]:
        print("   warning:", warning)
PY
echo "state kept in $STATE (remove it when done)"
