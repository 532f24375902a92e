#!/usr/bin/env bash
# fs-meta-compare.sh — the metadata figures of fs-bench.sh, berth (single copy) and
# libfuse's passthrough_ll alternating ROUNDS times on the same disk: creates, stats and
# deletes of 5,000 files, and the tarball extract + stat. Interleaving keeps each pair of
# figures neighbours in time (the disk and CPU of a VM drift a lot). A third target,
# passthrough_ll with -o default_permissions (pt-dperm), runs as Berth must: the kernel then
# asks for the parent's attributes after every create and unlink (one more round trip each).
# BASELINE=PATH adds a fourth target, berth-base: another berth-engine binary (say, a
# release build of the commit before a change) on its own volume, alternating with the rest.
# META_URL=postgres://… adds berth-pg: the same volume kind with the cluster state and the
# volume's namespace in that (empty) PostgreSQL database, under a lease (docs/cluster.md);
# e.g. `BERTH_METADATA=postgres scripts/cluster.sh up 1` and
# META_URL=postgres://berth@10.77.0.9:5432/berth_scratch?sslmode=disable (over the namespace network).
#   scripts/fs-meta-compare.sh            # ROUNDS=3 (passthrough_ll keeps a descriptor per inode it
#   knows and finds inodes by a linear scan: more rounds run it out of descriptors)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
ROUNDS=${ROUNDS:-3}
W=${WORK:-/var/tmp/berth-meta-compare}
swift build -c release --product berth-engine >/dev/null
E=.build/release/berth-engine
cleanup() { for m in "$W/mnt" "$W/pt" "$W/ptd" "$W/base" "$W/pgm"; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done; true; }
trap cleanup EXIT
cleanup; rm -rf "$W"; mkdir -p "$W/mnt" "$W/pt" "$W/pt-src" "$W/ptd" "$W/ptd-src" "$W/base" "$W/pgm"
gcc -O2 -o "$W/passthrough_ll" /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c $(pkg-config fuse3 --cflags --libs)
python3 scripts/fs-workloads.py tarball "$W/tarball.tar"
"$E" init "$W/state" --capacity $((64 << 30)) --chunk $((4 << 20)) --pgs 256 >/dev/null
"$E" mount "$W/state" v "$W/mnt" --class remote-disk --size $((16 << 30)) >/dev/null &
"$W/passthrough_ll" -f -o source="$W/pt-src" "$W/pt" 2>/dev/null &
"$W/passthrough_ll" -f -o source="$W/ptd-src",default_permissions "$W/ptd" 2>/dev/null &
targets="berth passthrough pt-dperm"
if [ -n "${BASELINE:-}" ]; then
  "$BASELINE" init "$W/base-state" --capacity $((64 << 30)) --chunk $((4 << 20)) --pgs 256 >/dev/null
  "$BASELINE" mount "$W/base-state" v "$W/base" --class remote-disk --size $((16 << 30)) >/dev/null &
  targets="$targets berth-base"
fi
if [ -n "${META_URL:-}" ]; then
  "$E" init "$W/pg-state" --capacity $((64 << 30)) --chunk $((4 << 20)) --pgs 256 --metadata "$META_URL" >/dev/null
  "$E" mount "$W/pg-state" v "$W/pgm" --class remote-disk --size $((16 << 30)) --metadata "$META_URL" >/dev/null &
  targets="$targets berth-pg"
fi
for _ in $(seq 100); do
  mountpoint -q "$W/mnt" && mountpoint -q "$W/pt" && mountpoint -q "$W/ptd" && { [ -z "${BASELINE:-}" ] || mountpoint -q "$W/base"; } \
    && { [ -z "${META_URL:-}" ] || mountpoint -q "$W/pgm"; } && break
  sleep 0.1
done
reporting=/sys/module/page_reporting/parameters/min_free_ms  # see docs/storage.md, "Benchmark"
[ -r "$reporting" ] && echo "free page reporting min_free_ms: $(cat "$reporting")"
for r in $(seq "$ROUNDS"); do
  for target in $targets; do
    case $target in berth) dir="$W/mnt/r$r" ;; passthrough) dir="$W/pt/r$r" ;; pt-dperm) dir="$W/ptd/r$r" ;;
      berth-pg) dir="$W/pgm/r$r" ;; *) dir="$W/base/r$r" ;; esac
    python3 scripts/fs-workloads.py meta-line "$target" "$dir" 5000 "$W/tarball.tar"
  done
done
