#!/usr/bin/env bash
# Drives a release VolumeDriver with Python's grpcio (the C-core gRPC, as Go's and the
# Kubernetes sidecars' are a different implementation from grpc-swift): stubs generated
# from proto/csi.proto, a volume created, staged, published, written, read, stat'ed,
# unpublished, unstaged and deleted, a snapshot taken and restored into a clone, plus two error codes. Not part of CI (it installs
# grpcio from PyPI); run it by hand after touching the protocol or the transport.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
python3 -c "import grpc_tools" 2>/dev/null || pip install -q grpcio grpcio-tools
swift build -c release --product VolumeDriver
work=$(mktemp -d /tmp/berth-interop.XXXX)
mkdir -p "$work/gen" "$work/stage" "$work/restored"
python3 -m grpc_tools.protoc -I proto --python_out="$work/gen" --grpc_python_out="$work/gen" proto/csi.proto
.build/release/VolumeDriver --state-dir "$work/state" --endpoint "unix://$work/csi.sock" --admin-socket "$work/admin.sock" \
  --metrics-address off > "$work/ready" 2> "$work/daemon.log" &
daemon=$!
trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q READY "$work/ready" 2>/dev/null && break; sleep 0.1; done
python3 - "$work" <<'PY'
import os, sys, grpc
work = sys.argv[1]
sys.path.insert(0, work + "/gen")
import csi_pb2 as pb, csi_pb2_grpc as rpc
channel = grpc.insecure_channel(f"unix://{work}/csi.sock")
identity, controller, node = rpc.IdentityStub(channel), rpc.ControllerStub(channel), rpc.NodeStub(channel)
assert identity.GetPluginInfo(pb.GetPluginInfoRequest()).name == "csi.berth.dev"
cap = pb.VolumeCapability(mount=pb.VolumeCapability.MountVolume(),
                          access_mode=pb.VolumeCapability.AccessMode(mode=pb.VolumeCapability.AccessMode.SINGLE_NODE_WRITER))
volume = controller.CreateVolume(pb.CreateVolumeRequest(name="interop", capacity_range=pb.CapacityRange(required_bytes=1 << 20),
                                                        volume_capabilities=[cap], parameters={"redundancy": "erasure"})).volume
try:
    controller.CreateVolume(pb.CreateVolumeRequest(name="interop", capacity_range=pb.CapacityRange(required_bytes=2 << 20), volume_capabilities=[cap]))
    raise SystemExit("an incompatible repeat was accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.ALREADY_EXISTS, e.code()
stage, target = f"{work}/stage", f"{work}/target"
node.NodeStageVolume(pb.NodeStageVolumeRequest(volume_id=volume.volume_id, staging_target_path=stage, volume_capability=cap))
node.NodePublishVolume(pb.NodePublishVolumeRequest(volume_id=volume.volume_id, staging_target_path=stage, target_path=target, volume_capability=cap))
open(f"{target}/x", "w").write("hello from grpcio")
assert open(f"{target}/x").read() == "hello from grpcio"
usage = node.NodeGetVolumeStats(pb.NodeGetVolumeStatsRequest(volume_id=volume.volume_id, volume_path=target)).usage
assert any(u.unit == pb.VolumeUsage.BYTES and u.total == 1 << 20 for u in usage), usage
# Snapshots and clones: taken while mounted, restored into a new volume.
snap = controller.CreateSnapshot(pb.CreateSnapshotRequest(name="interop-snap", source_volume_id=volume.volume_id)).snapshot
assert snap.ready_to_use and snap.source_volume_id == volume.volume_id and snap.creation_time.seconds > 0, snap
open(f"{target}/x", "w").write("changed after the snapshot")
listed = controller.ListSnapshots(pb.ListSnapshotsRequest(source_volume_id=volume.volume_id)).entries
assert [e.snapshot.snapshot_id for e in listed] == [snap.snapshot_id], listed
restored = controller.CreateVolume(pb.CreateVolumeRequest(name="interop-restored", volume_capabilities=[cap],
    parameters={"redundancy": "erasure"},
    volume_content_source=pb.VolumeContentSource(snapshot=pb.VolumeContentSource.SnapshotSource(snapshot_id=snap.snapshot_id)))).volume
assert restored.content_source.snapshot.snapshot_id == snap.snapshot_id, restored
restage = f"{work}/restored"
node.NodeStageVolume(pb.NodeStageVolumeRequest(volume_id=restored.volume_id, staging_target_path=restage, volume_capability=cap))
assert open(f"{restage}/x").read() == "hello from grpcio"
node.NodeUnstageVolume(pb.NodeUnstageVolumeRequest(volume_id=restored.volume_id, staging_target_path=restage))
controller.DeleteVolume(pb.DeleteVolumeRequest(volume_id=restored.volume_id))
controller.DeleteSnapshot(pb.DeleteSnapshotRequest(snapshot_id=snap.snapshot_id))
controller.DeleteSnapshot(pb.DeleteSnapshotRequest(snapshot_id=snap.snapshot_id))
node.NodeUnpublishVolume(pb.NodeUnpublishVolumeRequest(volume_id=volume.volume_id, target_path=target))
node.NodeUnstageVolume(pb.NodeUnstageVolumeRequest(volume_id=volume.volume_id, staging_target_path=stage))
controller.DeleteVolume(pb.DeleteVolumeRequest(volume_id=volume.volume_id))
try:
    controller.ListVolumes(pb.ListVolumesRequest(starting_token="bogus"))
    raise SystemExit("a bogus token was accepted")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.ABORTED, e.code()
print("grpcio interop: ok (identity, create, idempotency code, stage, publish, write/read, stats, snapshot, clone, unpublish, unstage, delete, list token)")
PY
