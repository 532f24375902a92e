#!/usr/bin/env bash
# Berth's main job, from a fresh Debian machine (as root: it mounts FUSE filesystems).
#   1. Starts the CSI driver daemon, VolumeDriver, on a new state directory: the embedded
#      default cluster (SQLite metadata, 6 hosts x 2 local directory devices, the shipped
#      storage classes), the CSI socket, the admin socket, /metrics on localhost.
#   2. Through the CSI API (berth-csi, a command-line CSI client), per shipped class:
#      CreateVolume with the class's StorageClass parameters, NodeStageVolume,
#      NodePublishVolume to a directory; writes a file there, reads it back and checks it.
#   3. Prints the cluster status and the capacity per class (provisionctl), and a few metrics.
#   4. Unpublishes, unstages and stops the daemon with SIGTERM (clean unmounts).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# One product per call: with several --product flags only the last is built.
for product in VolumeDriver berth-fuse-keeper provisionctl berth-csi; do swift build -c release --product "$product"; done
BIN=$PWD/.build/release

STATE=${BERTH_STATE:-$(mktemp -d /var/tmp/berth-demo.XXXX)}
CSI=$STATE/csi.sock ADMIN=$STATE/admin.sock METRICS=127.0.0.1:${BERTH_METRICS_PORT:-9810}
echo "== VolumeDriver on $STATE (embedded default cluster)"
$BIN/VolumeDriver --state-dir "$STATE/state" --endpoint "unix://$CSI" --admin-socket "$ADMIN" \
  --metrics-address "$METRICS" --node-id "$(hostname)" > "$STATE/ready" 2> "$STATE/daemon.log" &
daemon=$!
cleanup() { kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 300); do grep -q READY "$STATE/ready" 2>/dev/null && break; kill -0 "$daemon" || { cat "$STATE/daemon.log"; exit 1; }; sleep 0.1; done
cat "$STATE/ready"
csi() { $BIN/berth-csi "$@" --endpoint "unix://$CSI"; }

echo
echo "== one volume per storage class, through the CSI API"
for manifest in storageclasses/*.yaml; do
  class=$(basename "$manifest" .yaml)
  id=$(csi create "demo-$class" --size 1Gi --class-file "$manifest" | python3 -c 'import json,sys; print(json.load(sys.stdin)["volume"]["volume_id"])')
  staging=$STATE/staging/$class target=$STATE/pods/demo/$class
  mkdir -p "$staging" "$(dirname "$target")"
  csi stage "$id" "$staging"
  csi publish "$id" "$staging" "$target"
  head -c $((9 << 20)) /dev/urandom > "$STATE/payload-$class"
  cp "$STATE/payload-$class" "$target/file.bin" && sync "$target/file.bin"
  if cmp -s "$STATE/payload-$class" "$target/file.bin"; then result=ok; else result=MISMATCH; fi
  echo "$class: volume $id published at $target; wrote and read back 9 MiB: $result ($(df -h "$target" | awk 'NR==2 {print $2" provisioned, "$3" used"}'))"
  [ "$result" = ok ] || exit 1
  echo "$id $staging $target" >> "$STATE/published"
done

echo
echo "== provisionctl status"
$BIN/provisionctl status --socket "$ADMIN"
echo
echo "== provisionctl capacity (per class)"
$BIN/provisionctl capacity --socket "$ADMIN"
echo
echo "== provisionctl volume list"
$BIN/provisionctl volume list --socket "$ADMIN"
echo
echo "== a few of http://$METRICS/metrics"
python3 - "$METRICS" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics").read().decode()
for line in text.splitlines():
    if line.startswith(("berth_rpc_requests_total", "berth_volumes", "berth_class_usable_bytes")):
        print(line)
PY

echo
echo "== unpublish, unstage, stop"
while read -r id staging target; do csi unpublish "$id" "$target"; csi unstage "$id" "$staging"; done < "$STATE/published"
cleanup
trap - EXIT
echo "daemon stopped cleanly; state kept in $STATE (restart with: $BIN/VolumeDriver --state-dir $STATE/state ...; remove it when done)"
