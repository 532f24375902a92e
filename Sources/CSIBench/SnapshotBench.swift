import CSIProtocol
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import SocketTransport
import Synchronization

/// csi-bench --snapshots: a volume mounted and filled with `files` files of `fileBytes`
/// (default 100,000 × 105 KiB ≈ 10 GiB), then, over the CSI socket: three CreateSnapshot
/// calls (the first flushes what the writers left buffered), a CreateVolume from a
/// snapshot and one from the mounted volume — each timed — and what a snapshot of the
/// unchanged volume adds on the devices (shard files) and in metadata (its database).
/// A clone is staged and sampled files compared with the source's, so the copy is real.
enum SnapshotBench {
    struct Result: Codable {
        var storageClass: String
        var files: Int
        var dataBytes: Int64
        var fillSeconds: Double
        var snapshotMs: [Double]
        var snapshotMedianMs: Double
        var cloneFromSnapshotMs: Double
        var cloneFromVolumeMs: Double
        var snapshotDeviceBytes: Int64
        var snapshotMetadataBytes: Int64
        var sampledFilesIdentical: Int

        enum CodingKeys: String, CodingKey {
            case files
            case storageClass = "class"
            case dataBytes = "data_bytes"
            case fillSeconds = "fill_seconds"
            case snapshotMs = "snapshot_ms"
            case snapshotMedianMs = "snapshot_median_ms"
            case cloneFromSnapshotMs = "clone_from_snapshot_ms"
            case cloneFromVolumeMs = "clone_from_volume_ms"
            case snapshotDeviceBytes = "snapshot_device_bytes"
            case snapshotMetadataBytes = "snapshot_metadata_bytes"
            case sampledFilesIdentical = "sampled_files_identical"
        }
    }

    static let parameters: [String: [String: String]] = [
        "replicated": ["redundancy": "replicated", "copies": "3"],
        "erasure": ["redundancy": "erasure", "dataShards": "4", "parityShards": "2"],
        "single": ["redundancy": "single"],
    ]

    static func run(root: String, socket: String, files: Int, fileBytes: Int, redundancy: String, json: Bool) async throws {
        guard let classParameters = parameters[redundancy] else { fatalError("--class must be replicated, erasure or single") }
        let dataBytes = Int64(files) * Int64(fileBytes)
        let volumeBytes = (dataBytes * 5 / 4 + (1 << 30)) & ~Int64((1 << 20) - 1)
        let staging = root + "/targets/staging", target = root + "/targets/volume", cloneStaging = root + "/targets/clone"
        for dir in [staging, cloneStaging] { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let clock = ContinuousClock()
        let result = try await withGRPCClient(transport: try Transports.client(path: socket)) { grpc -> Result in
            let controller = Csi_V1_Controller.Client(wrapping: grpc)
            let node = Csi_V1_Node.Client(wrapping: grpc)
            var create = Csi_V1_CreateVolumeRequest()
            create.name = "bench"
            create.capacityRange.requiredBytes = volumeBytes
            create.volumeCapabilities = [CSIBench.capability()]
            create.parameters = classParameters
            let volume = try await controller.createVolume(create).volume
            var stage = Csi_V1_NodeStageVolumeRequest()
            stage.volumeID = volume.volumeID
            stage.stagingTargetPath = staging
            stage.volumeCapability = CSIBench.capability()
            _ = try await node.nodeStageVolume(stage)
            var publish = Csi_V1_NodePublishVolumeRequest()
            publish.volumeID = volume.volumeID
            publish.stagingTargetPath = staging
            publish.targetPath = target
            publish.volumeCapability = CSIBench.capability()
            _ = try await node.nodePublishVolume(publish)

            CSIBench.progress("writing \(files) files of \(fileBytes) bytes")
            let fillStart = clock.now
            try fill(target, files: files, fileBytes: fileBytes)
            let fillSeconds = CSIBench.seconds(clock.now - fillStart)
            CSIBench.progress(String(format: "written in %.1f s", fillSeconds))

            let devicesBefore = allocatedBytes(root + "/state/devices")
            var snapshotMs: [Double] = []
            var snapshotIDs: [String] = []
            for i in 0..<3 {
                var r = Csi_V1_CreateSnapshotRequest()
                r.name = "snap-\(i)"
                r.sourceVolumeID = volume.volumeID
                let t = clock.now
                snapshotIDs.append(try await controller.createSnapshot(r).snapshot.snapshotID)
                snapshotMs.append(CSIBench.seconds(clock.now - t) * 1000)
            }
            let snapshotDeviceBytes = (allocatedBytes(root + "/state/devices") - devicesBefore) / 3
            let snapshotMetadataBytes = allocatedBytes(root + "/state/volumes/\(snapshotIDs[1]).sqlite")

            var fromSnapshot = create
            fromSnapshot.name = "clone-of-snapshot"
            fromSnapshot.volumeContentSource.snapshot.snapshotID = snapshotIDs[1]
            var t = clock.now
            let clone = try await controller.createVolume(fromSnapshot).volume
            let cloneFromSnapshotMs = CSIBench.seconds(clock.now - t) * 1000
            var fromVolume = create
            fromVolume.name = "clone-of-volume"
            fromVolume.volumeContentSource.volume.volumeID = volume.volumeID
            t = clock.now
            _ = try await controller.createVolume(fromVolume)
            let cloneFromVolumeMs = CSIBench.seconds(clock.now - t) * 1000

            stage.volumeID = clone.volumeID
            stage.stagingTargetPath = cloneStaging
            _ = try await node.nodeStageVolume(stage)
            var identical = 0
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<100 {
                let path = Self.path(Int.random(in: 0..<files, using: &generator))
                if let a = FileManager.default.contents(atPath: target + path), a.count == fileBytes,
                   a == FileManager.default.contents(atPath: cloneStaging + path) { identical += 1 }
            }
            var unstage = Csi_V1_NodeUnstageVolumeRequest()
            unstage.volumeID = clone.volumeID
            unstage.stagingTargetPath = cloneStaging
            _ = try await node.nodeUnstageVolume(unstage)
            var unpublish = Csi_V1_NodeUnpublishVolumeRequest()
            unpublish.volumeID = volume.volumeID
            unpublish.targetPath = target
            _ = try await node.nodeUnpublishVolume(unpublish)
            unstage.volumeID = volume.volumeID
            unstage.stagingTargetPath = staging
            _ = try await node.nodeUnstageVolume(unstage)
            return Result(storageClass: redundancy, files: files, dataBytes: dataBytes, fillSeconds: fillSeconds, snapshotMs: snapshotMs,
                          snapshotMedianMs: snapshotMs.sorted()[1], cloneFromSnapshotMs: cloneFromSnapshotMs,
                          cloneFromVolumeMs: cloneFromVolumeMs, snapshotDeviceBytes: snapshotDeviceBytes,
                          snapshotMetadataBytes: snapshotMetadataBytes, sampledFilesIdentical: identical)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(String(format: "%@, %d files, %.1f GiB written in %.1f s", result.storageClass, result.files,
                         Double(result.dataBytes) / Double(1 << 30), result.fillSeconds))
            print("CreateSnapshot ms:            " + result.snapshotMs.map { String(format: "%.1f", $0) }.joined(separator: ", "))
            print(String(format: "CreateVolume from snapshot:   %.1f ms", result.cloneFromSnapshotMs))
            print(String(format: "CreateVolume from volume:     %.1f ms", result.cloneFromVolumeMs))
            print("a snapshot adds on devices:   \(result.snapshotDeviceBytes) bytes; its metadata: \(result.snapshotMetadataBytes) bytes")
            print("sampled files identical:      \(result.sampledFilesIdentical)/100")
        }
    }

    /// File `i`: 1,000 per directory.
    static func path(_ i: Int) -> String { "/d\(i / 1000)/f\(i)" }

    /// Writes the files with four writers; each file's bytes start with its number.
    static func fill(_ root: String, files: Int, fileBytes: Int) throws {
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        let pattern = (0..<(fileBytes + 4096)).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        for d in 0..<((files + 999) / 1000) { try FileManager.default.createDirectory(atPath: root + "/d\(d)", withIntermediateDirectories: true) }
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 4) { writer in
            var buffer = [UInt8](repeating: 0, count: fileBytes)
            for i in stride(from: writer, to: files, by: 4) {
                buffer.withUnsafeMutableBytes { b in
                    pattern.withUnsafeBytes { p in b.copyMemory(from: UnsafeRawBufferPointer(rebasing: p[(i % 4096)..<(i % 4096 + fileBytes)])) }
                    b.storeBytes(of: UInt64(i), as: UInt64.self)
                }
                let fd = open(root + path(i), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                if fd < 0 || buffer.withUnsafeBytes({ write(fd, $0.baseAddress, fileBytes) }) != fileBytes { failures.add(1, ordering: .relaxed) }
                if fd >= 0 { close(fd) }
            }
        }
        if failures.load(ordering: .relaxed) > 0 { throw CocoaError(.fileWriteUnknown) }
    }

    /// Bytes the files under `path` take on disk (st_blocks).
    static func allocatedBytes(_ path: String) -> Int64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        if (st.st_mode & S_IFMT) != S_IFDIR { return Int64(st.st_blocks) * 512 }
        var total: Int64 = 0
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        for case let relative as String in walker where lstat(path + "/" + relative, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG {
            total += Int64(st.st_blocks) * 512
        }
        return total
    }
}
