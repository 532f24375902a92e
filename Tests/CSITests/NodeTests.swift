import CSIProtocol
import Foundation
import GRPCCore
import Testing

/// Node RPCs: real FUSE mounts at real paths, through the real daemon.
@Suite(.serialized) struct NodeTests {
    @Test(arguments: [("replicated-3", Requests.replicated), ("ec-4-2", Requests.erasure), ("remote-disk", Requests.single)])
    func stagePublishWriteReadUnpublishUnstage(className: String, parameters: [String: String]) async throws {
        let daemon = try RunningDaemon()
        let staging = daemon.root + "/staging"
        let target = daemon.root + "/pods/p1/volume"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: daemon.root + "/pods/p1", withIntermediateDirectories: true)
        try await daemon.csi { _, c, n in
            let volume = try await c.createVolume(Requests.create("data-\(className)", bytes: 64 << 20, parameters: parameters)).volume
            #expect(volume.volumeContext["storage.berth.dev/class"] == className)
            _ = try await n.nodeStageVolume(Requests.stage(volume.volumeID, at: staging))
            _ = try await n.nodeStageVolume(Requests.stage(volume.volumeID, at: staging))  // idempotent
            _ = try await n.nodePublishVolume(Requests.publish(volume.volumeID, staging: staging, target: target))
            _ = try await n.nodePublishVolume(Requests.publish(volume.volumeID, staging: staging, target: target))  // idempotent
            // Same target, incompatible (read-only now): ALREADY_EXISTS.
            await expect(.alreadyExists) { try await n.nodePublishVolume(Requests.publish(volume.volumeID, staging: staging, target: target, readOnly: true)) }

            let payload = Data((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
            try payload.write(to: URL(fileURLWithPath: target + "/file.bin"))
            #expect(FileManager.default.contents(atPath: target + "/file.bin") == payload)
            // The staging path shows the same filesystem.
            #expect(FileManager.default.contents(atPath: staging + "/file.bin") == payload)

            var stats = Csi_V1_NodeGetVolumeStatsRequest()
            stats.volumeID = volume.volumeID
            stats.volumePath = target
            let usage = try await n.nodeGetVolumeStats(stats).usage
            let bytes = try #require(usage.first { $0.unit == .bytes })
            #expect(bytes.total == 64 << 20)
            stats.volumePath = ""
            await expect(.invalidArgument) { try await n.nodeGetVolumeStats(stats) }
            stats.volumePath = target
            #expect(bytes.used >= 3 << 20)
            let inodes = try #require(usage.first { $0.unit == .inodes })
            #expect(inodes.used >= 2)
            stats.volumePath = daemon.root + "/elsewhere"
            await expect(.notFound) { try await n.nodeGetVolumeStats(stats) }

            // Online expansion: the mounted filesystem sees the new size at once.
            var grow = Csi_V1_ControllerExpandVolumeRequest()
            grow.volumeID = volume.volumeID
            grow.capacityRange.requiredBytes = 96 << 20
            #expect(try await c.controllerExpandVolume(grow).capacityBytes == 96 << 20)
            var nodeGrow = Csi_V1_NodeExpandVolumeRequest()
            nodeGrow.volumeID = volume.volumeID
            nodeGrow.volumePath = target
            nodeGrow.capacityRange.requiredBytes = 96 << 20
            #expect(try await n.nodeExpandVolume(nodeGrow).capacityBytes == 96 << 20)
            var fs = statvfs()
            #expect(statvfs(target, &fs) == 0 && Int64(fs.f_blocks) * Int64(fs.f_frsize) == 96 << 20)
            nodeGrow.volumePath = daemon.root + "/elsewhere"
            await expect(.notFound) { try await n.nodeExpandVolume(nodeGrow) }
            nodeGrow.volumePath = ""
            await expect(.invalidArgument) { try await n.nodeExpandVolume(nodeGrow) }

            // A read-only publish of the same volume at a second target.
            let readOnlyTarget = daemon.root + "/pods/p1/ro"
            _ = try await n.nodePublishVolume(Requests.publish(volume.volumeID, staging: staging, target: readOnlyTarget, readOnly: true))
            #expect(FileManager.default.contents(atPath: readOnlyTarget + "/file.bin") == payload)
            #expect(!FileManager.default.createFile(atPath: readOnlyTarget + "/nope", contents: Data([1])))
            #expect(errno == EROFS)

            // In use: DeleteVolume refuses.
            var delete = Csi_V1_DeleteVolumeRequest()
            delete.volumeID = volume.volumeID
            await expect(.failedPrecondition) { try await c.deleteVolume(delete) }

            _ = try await n.nodeUnpublishVolume(Requests.unpublish(volume.volumeID, target: readOnlyTarget))
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(volume.volumeID, target: target))
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(volume.volumeID, target: target))  // idempotent
            #expect(!FileManager.default.fileExists(atPath: target))  // the driver created it, the driver removed it
            _ = try await n.nodeUnstageVolume(Requests.unstage(volume.volumeID, at: staging))
            _ = try await n.nodeUnstageVolume(Requests.unstage(volume.volumeID, at: staging))
            #expect(!FileManager.default.fileExists(atPath: staging + "/file.bin"))
            _ = try await c.deleteVolume(delete)
        }
    }

    @Test func hostilePathsAndMissingFieldsAreRefused() async throws {
        let daemon = try RunningDaemon()
        let staging = daemon.root + "/staging"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: daemon.root + "/link", withDestinationPath: "/etc")
        try await daemon.csi { _, c, n in
            let id = try await c.createVolume(Requests.create("target", bytes: 8 << 20)).volume.volumeID
            for bad in ["relative/path", daemon.root + "/link", daemon.root + "/a/../../etc", daemon.root + "//x", daemon.stateDirectory + "/devices/h1-d1",
                        daemon.root, "/", daemon.root + "/nul\u{0}byte", "/" + String(repeating: "x", count: 5000)] {
                let e = await rpcError { try await n.nodeStageVolume(Requests.stage(id, at: bad)) }
                #expect(e?.code == .invalidArgument, "stage at \(bad.prefix(80)): \(String(describing: e))")
                await expect(.invalidArgument) { try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: bad)) }
            }
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: daemon.root + "/link") == "/etc")
            // Never over a directory that holds something (an orchestrator's paths are empty).
            let occupied = daemon.root + "/occupied"
            try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: true)
            try Data("precious".utf8).write(to: URL(fileURLWithPath: occupied + "/keep"))
            await expect(.invalidArgument) { try await n.nodeStageVolume(Requests.stage(id, at: occupied)) }
            #expect(FileManager.default.contents(atPath: occupied + "/keep") == Data("precious".utf8))
            var noCapability = Requests.stage(id, at: staging)
            noCapability.clearVolumeCapability()
            await expect(.invalidArgument) { try await n.nodeStageVolume(noCapability) }
            await expect(.invalidArgument) { try await n.nodeStageVolume(Requests.stage("", at: staging)) }
            await expect(.notFound) { try await n.nodeStageVolume(Requests.stage("vol-ffffffffffffffffffffffffffffffff", at: staging)) }
            // Publishing needs the volume staged first.
            await expect(.failedPrecondition) { try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: daemon.root + "/t")) }
            var noStaging = Requests.publish(id, staging: staging, target: daemon.root + "/t")
            noStaging.stagingTargetPath = ""
            await expect(.failedPrecondition) { try await n.nodePublishVolume(noStaging) }
            await expect(.notFound) { try await n.nodePublishVolume(Requests.publish("vol-ffffffffffffffffffffffffffffffff", staging: staging, target: daemon.root + "/t")) }
            // Unpublishing what is not mounted succeeds and touches nothing.
            try FileManager.default.createDirectory(atPath: daemon.root + "/untouched", withIntermediateDirectories: true)
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(id, target: daemon.root + "/untouched"))
            #expect(FileManager.default.fileExists(atPath: daemon.root + "/untouched"))
            await expect(.invalidArgument) { try await n.nodeUnpublishVolume(Requests.unpublish("", target: daemon.root + "/t")) }
            await expect(.notFound) { try await n.nodeUnpublishVolume(Requests.unpublish("vol-ffffffffffffffffffffffffffffffff", target: daemon.root + "/t")) }
            await expect(.notFound) { try await n.nodeUnstageVolume(Requests.unstage("vol-ffffffffffffffffffffffffffffffff", at: staging)) }
            await expect(.invalidArgument) { try await n.nodeUnpublishVolume(Requests.unpublish(id, target: "")) }
        }
    }

    /// Without the FUSE session keeper (MountsSurviveRestartTests has it): mounts end with
    /// the daemon and the next one mounts them again.
    @Test func restartKeepsVolumesDataAndMounts() async throws {
        let daemon = try RunningDaemon(arguments: ["--fuse-keeper", "off"])
        let staging = daemon.root + "/staging"
        let target = daemon.root + "/target"
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        let id = try await daemon.csi { _, c, n in
            let id = try await c.createVolume(Requests.create("survivor", bytes: 32 << 20, parameters: Requests.erasure)).volume.volumeID
            _ = try await n.nodeStageVolume(Requests.stage(id, at: staging))
            _ = try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: target))
            try Data("kept across restarts".utf8).write(to: URL(fileURLWithPath: target + "/note.txt"))
            let fd = open(target + "/note.txt", O_RDONLY)
            fsync(fd)
            close(fd)
            return id
        }
        try daemon.restart()
        // Re-mounted at start-up, data intact.
        #expect(FileManager.default.contents(atPath: target + "/note.txt") == Data("kept across restarts".utf8))
        try await daemon.csi { _, c, n in
            #expect(try await c.listVolumes(Csi_V1_ListVolumesRequest()).entries.map(\.volume.volumeID) == [id])
            _ = try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: target))  // still known: idempotent
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(id, target: target))
            _ = try await n.nodeUnstageVolume(Requests.unstage(id, at: staging))
        }
        // A killed daemon leaves dead mounts behind; the next start clears and re-mounts them.
        try await daemon.csi { _, _, n in
            _ = try await n.nodeStageVolume(Requests.stage(id, at: staging))
            _ = try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: target))
        }
        daemon.kill9()
        try daemon.start()
        #expect(FileManager.default.contents(atPath: target + "/note.txt") == Data("kept across restarts".utf8))
        try await daemon.node { n in
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(id, target: target))
            _ = try await n.nodeUnstageVolume(Requests.unstage(id, at: staging))
        }
    }
}
