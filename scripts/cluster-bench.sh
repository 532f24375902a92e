#!/usr/bin/env bash
# cluster-bench.sh — Berth across real hosts against the embedded default and GlusterFS, in
# one run on this machine (docs/benchmarks.md, "Cluster across hosts"):
#   1. embedded: VolumeDriver as scripts/run.sh starts it (one process, 6 hosts x 2 local
#      directories); a volume per shipped class through CSI; a native directory of the same
#      disk measured interleaved (forward then backward order).
#   2. cluster: scripts/cluster.sh up HOSTS (network namespaces, node agents, mutual TLS), a
#      volume per class through n1's CSI socket; the same tests. Then the rebuild: a client's
#      4 KiB latency idle; a host SIGKILLed; once it is out, the rebuild's MB/s and the same
#      client's latency while it runs. Then maintenance: another host in maintenance and
#      killed while MAINT_WRITE is written, back, maintenance stopped: the delta resynced
#      (bytes, seconds) and the client's latency meanwhile; no host may go out.
#   3. glusterfs: ../shared/bench/glusterfs-netns (replica 3, disperse 4+2 over HOSTS
#      namespaces), the same tests.
# Per target: sequential write (1 MiB blocks, SIZE, fsync at the end), sequential read (cold
# cache), random 4 KiB read and write IOPS (fio, RUNTIME s each). Prints a table, then one
# JSON line last: {"date", "machine", "size", "classes": {CLASS: {"embedded", "cluster",
# "glusterfs", "cluster_vs_embedded", "cluster_vs_glusterfs"}}, "native", "embedded_vs_native",
# "disk": {"write_mb_s", "read_mb_s"} (O_DIRECT, the devices' filesystem),
# "rebuild": {"class", "host", "bytes", "seconds", "mb_s", "first_bytes_s", "idle", "during", "p99_ratio", "vs_spare_disk"},
# "maintenance": {"class", "host", "written", "pgs_to_resync", "resync_bytes", "seconds", "mb_s", "went_out",
# "pgs_degraded", "idle", "during", "p99_ratio", "write_mb_s_while_away"}}.
#
#   scripts/cluster-bench.sh                 # SIZE=1g RUNTIME=10 HOSTS=6
#   SIZE=256m RUNTIME=5 PEER=0 scripts/cluster-bench.sh   # quicker, no GlusterFS
# Environment: WORK (default /var/tmp/berth-cluster-bench), OUT_AFTER (grace before a killed
# host is out, default 5s), REBUILD_MAX (s, default 600), MAINT_WRITE (written while a host is
# in maintenance, default 512m), IDLE_SECONDS (the client's idle
# latency sample, default 60), BERTH_DAEMON_ARGS (extra flags for
# both daemons), PEER (1: GlusterFS too, default), BUILD (0: use the release binaries as built).
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "$0")/.."
REPO=$PWD
source scripts/setup.sh
source scripts/bench-lib.sh
bench_need fio iproute2 nftables
[ "${PEER:-1}" = 1 ] && bench_need glusterfs-server glusterfs-client iputils-ping

SIZE=${SIZE:-1g}
RUNTIME=${RUNTIME:-10}
HOSTS=${HOSTS:-6}
WORK=${WORK:-/var/tmp/berth-cluster-bench}
OUT_AFTER=${OUT_AFTER:-5s}
VOLUME_SIZE=${VOLUME_SIZE:-8Gi}
REBUILD_MAX=${REBUILD_MAX:-600}
MAINT_WRITE=${MAINT_WRITE:-512m}
IDLE_SECONDS=${IDLE_SECONDS:-60}
GLNET=$REPO/../shared/bench/glusterfs-netns
CLASSES="replicated-3 ec-4-2 remote-disk"
export BERTH_CLUSTER_DIR=$WORK/cluster BERTH_BIN=$REPO/.build/release GLNET_BASE=$WORK/glnet
export BERTH_DEVICE_SIZE=${BERTH_DEVICE_SIZE:-16Gi}
say() { echo "[cluster-bench] $*" >&2; }
die() { say "$*"; exit 1; }
bench_page_reporting

if [ "${BUILD:-1}" = 1 ]; then
  say "building release binaries"
  # One product per call: with several --product flags only the last is built.
  for product in VolumeDriver berth-fuse-keeper provisionctl berth-csi; do swift build -c release --product "$product" >/dev/null; done
fi
BIN=$BERTH_BIN

# Mount points under DIR, deepest first (the order to unmount them in).
mounts_under() { awk -v d="$1" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r; }

EMBEDDED_PID=""
cleanup() {
  set +e
  for m in $(mounts_under "$WORK/"); do umount "$m" 2>/dev/null || umount -l "$m"; done
  [ -n "$EMBEDDED_PID" ] && kill -TERM "$EMBEDDED_PID" 2>/dev/null && wait "$EMBEDDED_PID" 2>/dev/null
  pkill -f "berth-fuse-keeper --socket $WORK/" 2>/dev/null
  bash scripts/cluster.sh down >/dev/null 2>&1
  if [ "${PEER:-1}" = 1 ]; then
    bash "$GLNET/gluster-netns.sh" stop >/dev/null 2>&1
    bash "$GLNET/netns-cluster.sh" down >/dev/null 2>&1
  fi
}
trap cleanup EXIT
cleanup
rm -rf "$WORK" && mkdir -p "$WORK"/{native,mnt,results}

# csi_mount ENDPOINT NAME CLASS: a volume of the shipped class, staged and published under
# $WORK/mnt; prints its mount point.
csi_mount() {
  local endpoint=$1 name=$2 class=$3 id
  id=$("$BIN/berth-csi" create "$name" --size "$VOLUME_SIZE" --class-file "storageclasses/$class.yaml" --endpoint "$endpoint" \
       | python3 -c 'import json,sys; print(json.load(sys.stdin)["volume"]["volume_id"])')
  [ -n "$id" ] || die "CreateVolume $name failed"
  mkdir -p "$WORK/mnt/$name-stage" "$WORK/mnt/$name"
  "$BIN/berth-csi" stage "$id" "$WORK/mnt/$name-stage" --endpoint "$endpoint" >/dev/null
  "$BIN/berth-csi" publish "$id" "$WORK/mnt/$name-stage" "$WORK/mnt/$name" --endpoint "$endpoint" >/dev/null
  # Never measure the directory under a mount that is not there.
  mountpoint -q "$WORK/mnt/$name" || die "$name is not mounted at $WORK/mnt/$name"
  echo "$id" > "$WORK/mnt/$name.id"
  echo "$WORK/mnt/$name"
}

# The four figures of one target; results/TARGET.json.
# seq_write TARGET DIR FILE / seq_read TARGET DIR FILE / random TARGET DIR
seq_write() {
  say "$1: sequential write $SIZE ($3)"
  fiojson --name="$3" --directory="$2" --rw=write --bs=1M --size="$SIZE" --end_fsync=1 --ioengine=psync \
    > "$WORK/results/$1.write.$3"
}
seq_read() {
  say "$1: sequential read ($3, cold)"
  drop
  fiojson --name="$3" --directory="$2" --rw=read --bs=1M --size="$SIZE" --ioengine=psync > "$WORK/results/$1.read.$3"
}
random_io() {
  say "$1: random 4 KiB read, write"
  fiojson --name=sw1 --directory="$2" --rw=randread --bs=4k --size="$SIZE" --ioengine=psync --time_based --runtime="$RUNTIME" \
    > "$WORK/results/$1.randread"
  fiojson --name=rw --directory="$2" --rw=randwrite --bs=4k --size=256m --ioengine=psync --time_based --runtime="$RUNTIME" \
    --end_fsync=1 > "$WORK/results/$1.randwrite"
  rm -f "$2"/rw.*
}
# measure_all PREFIX TARGET=DIR...: every test on every target, back to back; sequential
# passes forward, then backward (so a drift of the disk over the run falls on all alike).
measure_all() {
  local prefix=$1; shift
  local pairs=("$@") reversed=() i
  for ((i = ${#pairs[@]} - 1; i >= 0; i--)); do reversed+=("${pairs[$i]}"); done
  for p in "${pairs[@]}"; do seq_write "$prefix${p%%=*}" "${p#*=}" sw1; done
  for p in "${reversed[@]}"; do seq_write "$prefix${p%%=*}" "${p#*=}" sw2; done
  for p in "${pairs[@]}"; do seq_read "$prefix${p%%=*}" "${p#*=}" sw1; done
  for p in "${reversed[@]}"; do seq_read "$prefix${p%%=*}" "${p#*=}" sw2; done
  for p in "${pairs[@]}"; do random_io "$prefix${p%%=*}" "${p#*=}"; done
}

# ---- 1. embedded
say "embedded: VolumeDriver on $WORK/embedded"
mkdir -p "$WORK/embedded"
# shellcheck disable=SC2086
"$BIN/VolumeDriver" --state-dir "$WORK/embedded/state" --endpoint "unix://$WORK/embedded/csi.sock" \
  --admin-socket "$WORK/embedded/admin.sock" --node-id "$(hostname)" ${BERTH_DAEMON_ARGS:-} \
  > "$WORK/embedded/ready" 2> "$WORK/embedded/daemon.log" &
EMBEDDED_PID=$!
for _ in $(seq 300); do grep -q READY "$WORK/embedded/ready" 2>/dev/null && break; kill -0 "$EMBEDDED_PID" || { cat "$WORK/embedded/daemon.log"; exit 1; }; sleep 0.1; done
targets=("native=$WORK/native")
for class in $CLASSES; do targets+=("$class=$(csi_mount "unix://$WORK/embedded/csi.sock" "emb-$class" "$class")"); done
measure_all "embedded." "${targets[@]}"
# The volumes' sessions too, while the daemon serves them: stopped with SIGTERM it leaves
# them to its berth-fuse-keeper (mounts outlive restarts), where nothing would serve them.
for m in $(mounts_under "$WORK/mnt/") $(mounts_under "$WORK/embedded/"); do umount "$m" 2>/dev/null || umount -l "$m"; done
kill -TERM "$EMBEDDED_PID"; wait "$EMBEDDED_PID" 2>/dev/null || true; EMBEDDED_PID=""
pkill -f "berth-fuse-keeper --socket $WORK/" 2>/dev/null || true
rm -rf "$WORK/embedded" "$WORK/native"

# The disk's own bandwidth, past the page cache (O_DIRECT, 1 MiB, 8 s each way), on the
# filesystem every device directory lives on: what a rebuild's rate is held against (issue
# 30: at least half of what clients leave of it).
say "disk: direct sequential write and read"
mkdir -p "$WORK/disk"
fiojson --name=disk --directory="$WORK/disk" --rw=write --bs=1M --size=2g --direct=1 --ioengine=psync --time_based --runtime=8 \
  > "$WORK/results/disk.write"
fiojson --name=disk --directory="$WORK/disk" --rw=read --bs=1M --size=2g --direct=1 --ioengine=psync --time_based --runtime=8 \
  > "$WORK/results/disk.read"
rm -rf "$WORK/disk"

# ---- 2. cluster
say "cluster: scripts/cluster.sh up $HOSTS"
BERTH_DAEMON_ARGS="--out-after $OUT_AFTER ${BERTH_DAEMON_ARGS:-}" bash scripts/cluster.sh up "$HOSTS" > "$WORK/cluster-up.log"
CSI=$(tail -1 "$WORK/cluster-up.log" | python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"][0]["csi_endpoint"])')
ADMIN=$BERTH_CLUSTER_DIR/n1/admin.sock
targets=()
for class in $CLASSES; do targets+=("$class=$(csi_mount "$CSI" "cl-$class" "$class")"); done
measure_all "cluster." "${targets[@]}"

# The rebuild: a client of the 3-copy volume, idle, then while a killed host's shards are
# rebuilt. First the EC 4+2 and single-copy volumes leave, and the EC class with them: on
# six hosts EC 4+2 has no seventh to rebuild onto, and a host cannot go out while a class
# could not be placed without it (docs/cluster.md); what a lost host held of a single copy
# cannot be rebuilt anywhere.
status() { "$BIN/provisionctl" status --socket "$ADMIN" --output json; }
for name in cl-ec-4-2 cl-remote-disk; do
  id=$(cat "$WORK/mnt/$name.id")
  "$BIN/berth-csi" unpublish "$id" "$WORK/mnt/$name" --endpoint "$CSI" >/dev/null
  "$BIN/berth-csi" unstage "$id" "$WORK/mnt/$name-stage" --endpoint "$CSI" >/dev/null
  "$BIN/berth-csi" delete "$id" --endpoint "$CSI" >/dev/null
done
"$BIN/provisionctl" class delete ec-4-2 --yes --socket "$ADMIN" >/dev/null
R3=$WORK/mnt/cl-replicated-3
say "rebuild: client latency idle"
python3 scripts/fs-workloads.py latency "$R3/probe" 1 1 > /dev/null  # makes the probe's file
# Long enough to hold the disk's own stalls (an ext4 journal commit every few seconds),
# which a short idle sample can miss and a rebuild's span then holds.
python3 scripts/fs-workloads.py latency "$R3/probe" "$IDLE_SECONDS" 50 > "$WORK/results/latency.idle"
KILLED=n$HOSTS
before=$(status | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["epoch"])')
say "rebuild: kill $KILLED"
bash scripts/cluster.sh kill "$KILLED" > /dev/null
rm -f "$WORK/rebuilt"
python3 scripts/fs-workloads.py latency "$R3/probe" "$REBUILD_MAX" 50 "$WORK/rebuilt" > "$WORK/results/latency.during" &
probe=$!
# Polls status: the rebuild starts when the host is out (a new movement), ends when it is finished.
python3 - "$BIN/provisionctl" "$ADMIN" "$before" "$REBUILD_MAX" > "$WORK/results/rebuild" <<'PY'
import json, subprocess, sys, time
ctl, admin, before, limit = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def status():
    return json.loads(subprocess.run([ctl, "status", "--socket", admin, "--output", "json"], capture_output=True, check=True).stdout)
deadline, start, epoch, first_bytes = time.time() + limit, None, None, None
while time.time() < deadline:
    s, now = status(), time.time()
    m = s.get("movement") or {}
    if start is None and s.get("devices_out", 0) > 0 and m.get("epoch", 0) > before and m.get("total_bytes", 0) > 0:
        start, epoch = now, m["epoch"]
    if start is not None and first_bytes is None and m.get("done_bytes", 0) > 0:
        first_bytes = now - start
    if start is not None and m.get("epoch") == epoch and m.get("finished") and s.get("pgs_moving", 1) == 0:
        # Recovery of degraded writes made meanwhile goes with the next move: counted by status.
        # first_bytes_s: how long the movement waited before its first bytes (the mover's start).
        print(json.dumps({"bytes": m["done_bytes"], "seconds": now - start, "mb_s": m["done_bytes"] / (now - start) / 1e6,
                          "pgs_degraded": s.get("pgs_degraded"), "first_bytes_s": first_bytes}))
        sys.exit(0)
    time.sleep(0.2)
print(json.dumps({"error": "rebuild did not finish", "status": status()}))
PY
touch "$WORK/rebuilt"
wait "$probe"

# Maintenance: another host goes into maintenance and away (SIGKILL: a reboot) while MAINT_WRITE
# is written to the 3-copy volume; it comes back, maintenance stops, and the delta is resynced
# while the same client's latency is measured. No host may go out meanwhile (no rebuild).
MAINT=n$((HOSTS - 1))
say "maintenance: $MAINT away while $MAINT_WRITE is written"
field() { status | python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', 0))"; }
out_before=$(field devices_out)
"$BIN/provisionctl" maintenance start "$MAINT" --socket "$ADMIN" > /dev/null
bash scripts/cluster.sh kill "$MAINT" > /dev/null
fiojson --name=away --directory="$R3" --rw=write --bs=1M --size="$MAINT_WRITE" --end_fsync=1 --ioengine=psync > "$WORK/results/maint.write"
bash scripts/cluster.sh start "$MAINT" > /dev/null
for _ in $(seq 300); do [ "$(field devices_unreachable)" = 0 ] && break; sleep 0.2; done
rm -f "$WORK/resynced"
python3 scripts/fs-workloads.py latency "$R3/probe" "$REBUILD_MAX" 50 "$WORK/resynced" > "$WORK/results/latency.resync" &
probe=$!
sleep 2  # the probe's first samples before the resync starts
python3 - "$BIN/provisionctl" "$ADMIN" "$MAINT" "$REBUILD_MAX" "$out_before" > "$WORK/results/maintenance" <<'PY'
import json, subprocess, sys, time
ctl, admin, host, limit, out_before = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
def status():
    return json.loads(subprocess.run([ctl, "status", "--socket", admin, "--output", "json"], capture_output=True, check=True).stdout)
s = status()
pending, before = s.get("pgs_recovering", 0), s.get("recovered_bytes", 0)
start = time.time()
subprocess.run([ctl, "maintenance", "stop", host, "--socket", admin], capture_output=True, check=True)
while time.time() < start + limit:
    s = status()
    if s.get("pgs_recovering", 1) == 0:
        print(json.dumps({"host": host, "pgs_to_resync": pending, "resync_bytes": s["recovered_bytes"] - before,
                          "seconds": time.time() - start, "mb_s": (s["recovered_bytes"] - before) / max(1e-3, time.time() - start) / 1e6,
                          "went_out": s.get("devices_out", 0) - out_before, "pgs_degraded": s.get("pgs_degraded")}))
        sys.exit(0)
    time.sleep(0.2)
print(json.dumps({"error": "resync did not finish", "status": status()}))
PY
touch "$WORK/resynced"
wait "$probe"
for m in $(mounts_under "$WORK/mnt/"); do umount "$m" 2>/dev/null || umount -l "$m"; done
bash scripts/cluster.sh down > /dev/null

# ---- 3. GlusterFS across namespaces
if [ "${PEER:-1}" = 1 ]; then
  say "glusterfs: $HOSTS namespaces"
  bash "$GLNET/netns-cluster.sh" up "$HOSTS" >/dev/null
  bash "$GLNET/gluster-netns.sh" start >/dev/null
  for v in r3 ec42; do mkdir -p "$GLNET_BASE/mnt/$v/bench"; done
  measure_all "glusterfs." "replicated-3=$GLNET_BASE/mnt/r3/bench" "ec-4-2=$GLNET_BASE/mnt/ec42/bench"
  bash "$GLNET/gluster-netns.sh" stop >/dev/null 2>&1 || true
  bash "$GLNET/netns-cluster.sh" down >/dev/null 2>&1 || true
fi

python3 - "$WORK/results" "$SIZE" "$KILLED" "$MAINT_WRITE" <<'PY'
import datetime, glob, json, os, platform, statistics, sys
d, size, killed = sys.argv[1:4]
def load(name):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) else None
def figures(prefix):
    w = [load(f"{prefix}.write.{f}") for f in ("sw1", "sw2")]
    r = [load(f"{prefix}.read.{f}") for f in ("sw1", "sw2")]
    if None in w: return None
    out = {"seq_write_mb_s": statistics.mean(x["wbw"] for x in w) / 1e6,
           "seq_read_mb_s": statistics.mean(x["rbw"] for x in r) / 1e6,
           "seq_write_passes_mb_s": [x["wbw"] / 1e6 for x in w]}
    rr, rw = load(f"{prefix}.randread"), load(f"{prefix}.randwrite")
    if rr: out["rand_read_iops"] = rr["riops"]
    if rw: out["rand_write_iops"] = rw["wiops"]
    return out
def ratio(a, b, key): return a[key] / b[key] if a and b and b.get(key) else None
classes = {}
for c in ("replicated-3", "ec-4-2", "remote-disk"):
    e, cl, g = figures(f"embedded.{c}"), figures(f"cluster.{c}"), figures(f"glusterfs.{c}")
    classes[c] = {"embedded": e, "cluster": cl, "glusterfs": g,
                  "cluster_vs_embedded": {"seq_write": ratio(cl, e, "seq_write_mb_s"), "seq_read": ratio(cl, e, "seq_read_mb_s")},
                  "cluster_vs_glusterfs": {"seq_write": ratio(cl, g, "seq_write_mb_s"), "seq_read": ratio(cl, g, "seq_read_mb_s")}}
native = figures("embedded.native")
overhead = {"replicated-3": 3.0, "ec-4-2": 1.5}
vs_native = {c: classes[c]["embedded"]["seq_write_mb_s"] / (native["seq_write_mb_s"] / o) for c, o in overhead.items()}
idle, during, rebuild = load("latency.idle"), load("latency.during"), load("rebuild") or {}
maintenance, resync, away = load("maintenance") or {}, load("latency.resync"), load("maint.write")
maintenance["written"] = sys.argv[4]
if away: maintenance["write_mb_s_while_away"] = away["wbw"] / 1e6
maintenance.update({"class": "replicated-3", "idle": idle, "during": resync,
                    "p99_ratio": resync["p99_ms"] / idle["p99_ms"] if resync and idle and idle.get("p99_ms") else None})
rebuild.update({"class": "replicated-3", "host": killed, "idle": idle, "during": during,
                "p99_ratio": during["p99_ms"] / idle["p99_ms"] if idle and during else None})
dw, dr = load("disk.write"), load("disk.read")
disk = {"write_mb_s": dw["wbw"] / 1e6, "read_mb_s": dr["rbw"] / 1e6} if dw and dr else None
# What clients leave of the disk: its write bandwidth less what the probe writes (4 KiB at 25/s).
if disk and "mb_s" in rebuild:
    rebuild["vs_spare_disk"] = rebuild["mb_s"] / (disk["write_mb_s"] - 25 * 4096 / 1e6)
result = {"date": datetime.date.today().isoformat(),
          "machine": f"{os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') >> 30} GiB, {platform.release()}",
          "size": size, "classes": classes, "native": native, "embedded_vs_native": vs_native, "disk": disk, "rebuild": rebuild,
          "maintenance": maintenance}
f = lambda v, spec=".1f": "-" if v is None else format(v, spec)
print(f"{'class':14}{'target':11}{'seq W MB/s':>12}{'seq R MB/s':>12}{'rand R IOPS':>13}{'rand W IOPS':>13}")
for c, row in classes.items():
    for t in ("embedded", "cluster", "glusterfs"):
        x = row[t]
        if x: print(f"{c:14}{t:11}{f(x['seq_write_mb_s']):>12}{f(x['seq_read_mb_s']):>12}{f(x.get('rand_read_iops'), '.0f'):>13}{f(x.get('rand_write_iops'), '.0f'):>13}")
    print(f"{'':14}cluster ÷ embedded: write {f(row['cluster_vs_embedded']['seq_write'], '.2f')}, read {f(row['cluster_vs_embedded']['seq_read'], '.2f')}"
          f"; ÷ GlusterFS: write {f(row['cluster_vs_glusterfs']['seq_write'], '.2f')}, read {f(row['cluster_vs_glusterfs']['seq_read'], '.2f')}")
print(f"native: write {f(native['seq_write_mb_s'])}, read {f(native['seq_read_mb_s'])} MB/s; embedded ÷ (native ÷ overhead): "
      + ", ".join(f"{c} {v:.2f}" for c, v in vs_native.items()))
if "mb_s" in rebuild:
    print(f"rebuild after {killed} killed: {rebuild['bytes']} bytes in {rebuild['seconds']:.1f} s = {rebuild['mb_s']:.0f} MB/s; "
          f"client p99 {idle['p99_ms']:.2f} ms idle, {during['p99_ms']:.2f} ms during ({rebuild['p99_ratio']:.2f}x)")
    if disk:
        print(f"disk (O_DIRECT): write {disk['write_mb_s']:.0f} MB/s, read {disk['read_mb_s']:.0f} MB/s; "
              f"rebuild = {rebuild.get('vs_spare_disk', 0):.2f} of the disk's spare write bandwidth")
else:
    print(f"rebuild: {rebuild}")
if "resync_bytes" in maintenance and resync:
    print(f"maintenance of {maintenance['host']} while {maintenance['written']} was written: resynced {maintenance['resync_bytes']} bytes "
          f"in {maintenance['seconds']:.1f} s, {maintenance['went_out']} devices out; client p99 {resync['p99_ms']:.2f} ms during "
          f"({maintenance['p99_ratio']:.2f}x idle)")
else:
    print(f"maintenance: {maintenance}")
print(json.dumps(result))
PY
