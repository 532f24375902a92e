#!/usr/bin/env bash
# fs-meta-compare.sh — the metadata figures of fs-bench.sh, berth (single copy) and
# libfuse's passthrough_ll alternating ROUNDS times on the same disk: creates, stats and
# deletes of 5,000 files, and the tarball extract + stat. Interleaving keeps each pair of
# figures neighbours in time (the disk and CPU of a VM drift a lot).
#   scripts/fs-meta-compare.sh            # ROUNDS=3
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
ROUNDS=${ROUNDS:-3}
W=${WORK:-/var/tmp/berth-meta-compare}
swift build -c release --product berth-engine >/dev/null
E=.build/release/berth-engine
cleanup() { for m in "$W/mnt" "$W/pt"; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done; true; }
trap cleanup EXIT
cleanup; rm -rf "$W"; mkdir -p "$W/mnt" "$W/pt" "$W/pt-src"
gcc -O2 -o "$W/passthrough_ll" /usr/share/doc/libfuse3-dev/examples/passthrough_ll.c $(pkg-config fuse3 --cflags --libs)
python3 - "$W/tarball.tar" <<'PY'
import io, random, sys, tarfile
random.seed(5)
with tarfile.open(sys.argv[1], "w") as tar:
    for i in range(5000):
        data = random.randbytes(random.randint(1024, 16384))
        info = tarfile.TarInfo(f"d{i % 50}/f{i}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
PY
"$E" init "$W/state" --capacity $((64 << 30)) --chunk $((4 << 20)) --pgs 256 >/dev/null
"$E" mount "$W/state" v "$W/mnt" --class remote-disk --size $((16 << 30)) >/dev/null &
"$W/passthrough_ll" -f -o source="$W/pt-src" "$W/pt" 2>/dev/null &
for _ in $(seq 100); do mountpoint -q "$W/mnt" && mountpoint -q "$W/pt" && break; sleep 0.1; done
for r in $(seq "$ROUNDS"); do
  for target in berth passthrough; do
    dir="$W/mnt/r$r"; [ "$target" = passthrough ] && dir="$W/pt/r$r"
    python3 - "$target" "$dir" "$W/tarball.tar" <<'PY'
import os, subprocess, sys, time
name, d, tarball, n = sys.argv[1], sys.argv[2], sys.argv[3], 5000
os.makedirs(d + "/m")
t = time.perf_counter()
for i in range(n): os.close(os.open(f"{d}/m/f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
c = n / (time.perf_counter() - t); t = time.perf_counter()
for i in range(n): os.stat(f"{d}/m/f{i}")
s = n / (time.perf_counter() - t); t = time.perf_counter()
for i in range(n): os.unlink(f"{d}/m/f{i}")
u = n / (time.perf_counter() - t)
os.makedirs(d + "/tar"); t = time.perf_counter()
subprocess.run(["tar", "-xf", tarball, "-C", d + "/tar"], check=True)
for root, _, files in os.walk(d + "/tar"):
    for f in files: os.stat(os.path.join(root, f))
x = time.perf_counter() - t
print(f"{name:12} create {c:7.0f}/s  stat {s:8.0f}/s  delete {u:7.0f}/s  tar+stat {x:5.2f} s")
PY
  done
done
