#!/usr/bin/env bash
# posix-compare.sh — scripts/posix-probe.py on a native directory and on a Berth mount
# (CLASS, default remote-disk) side by side; prints the operations whose results differ and
# exits 1 if any differ beyond the known, documented ones (KNOWN, see docs/filesystem.md).
#   scripts/posix-compare.sh            # uses .build/debug/berth-engine (built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
CLASS=${CLASS:-remote-disk}
W=${WORK:-/var/tmp/berth-posix-compare}
E=${BIN:-.build/debug/berth-engine}
[ -x "$E" ] || swift build --product berth-engine >/dev/null
# Differences by design: sizes count against the provisioned capacity (ENOSPC, not ext4's
# EFBIG past 16 TiB); holes are found per chunk; libfuse 3.14 has no O_TMPFILE.
KNOWN=${KNOWN:-"seek-data-hole write-at-huge-offset truncate-huge O_TMPFILE"}
cleanup() { mountpoint -q "$W/mnt" 2>/dev/null && umount "$W/mnt"; true; }
trap cleanup EXIT
cleanup; rm -rf "$W"; mkdir -p "$W/mnt" "$W/native"
"$E" init "$W/state" --capacity $((8 << 30)) --chunk $((4 << 20)) --pgs 64 >/dev/null
"$E" mount "$W/state" v "$W/mnt" --class "$CLASS" --size $((4 << 30)) >"$W/mount.log" 2>&1 &
for _ in $(seq 100); do mountpoint -q "$W/mnt" && break; sleep 0.1; done
mountpoint -q "$W/mnt" || { echo "mount failed:"; cat "$W/mount.log"; exit 2; }
python3 scripts/posix-probe.py "$W/native" >"$W/native.txt"
python3 scripts/posix-probe.py "$W/mnt" >"$W/berth.txt"
echo "operations: $(wc -l <"$W/native.txt"); differing (native | berth):"
unexpected=0
while IFS= read -r name; do
  n=$(grep "^$name " "$W/native.txt" | sed "s/^$name *//"); b=$(grep "^$name " "$W/berth.txt" | sed "s/^$name *//")
  if [[ " $KNOWN " == *" $name "* ]]; then tag="known"; else tag="UNEXPECTED"; unexpected=1; fi
  printf '  %-28s %-20s | %-20s %s\n' "$name" "$n" "$b" "$tag"
done < <(diff "$W/native.txt" "$W/berth.txt" | awk '/^</ {print $2}')
exit $unexpected
