import AdminProtocol
import CSIProtocol
import Foundation
import GRPCCore
import Testing

/// Snapshots and clones through the real daemon's CSI socket: every snapshot RPC with its
/// errors and idempotency, and the data — a clone of a snapshot reads the old files while
/// the source reads the new, and deleting all three in any order leaves no shard behind.
@Suite(.serialized) struct SnapshotTests {
    static func snapshotRequest(_ name: String, of volume: String) -> Csi_V1_CreateSnapshotRequest {
        var r = Csi_V1_CreateSnapshotRequest()
        r.name = name
        r.sourceVolumeID = volume
        return r
    }

    static func clone(_ name: String, snapshot: String? = nil, volume: String? = nil, bytes: Int64 = 0,
                      parameters: [String: String] = Requests.replicated) -> Csi_V1_CreateVolumeRequest {
        var r = Requests.create(name, bytes: bytes, parameters: parameters)
        if bytes == 0 { r.clearCapacityRange() }
        if let snapshot { r.volumeContentSource.snapshot.snapshotID = snapshot }
        if let volume { r.volumeContentSource.volume.volumeID = volume }
        return r
    }

    static func list(_ c: Csi_V1_Controller.Client<some ClientTransport>, snapshot: String = "", volume: String = "",
                     max: Int32 = 0, token: String = "") async throws -> Csi_V1_ListSnapshotsResponse {
        var r = Csi_V1_ListSnapshotsRequest()
        r.snapshotID = snapshot
        r.sourceVolumeID = volume
        r.maxEntries = max
        r.startingToken = token
        return try await c.listSnapshots(r)
    }

    @Test func snapshotRPCsFollowTheSpec() async throws {
        let daemon = try RunningDaemon()
        try await daemon.csi { _, c, n in
            let offered = try await c.controllerGetCapabilities(Csi_V1_ControllerGetCapabilitiesRequest()).capabilities.map(\.rpc.type)
            for wanted: Csi_V1_ControllerServiceCapability.RPC.TypeEnum in [.createDeleteSnapshot, .listSnapshots, .cloneVolume] {
                #expect(offered.contains(wanted), "\(wanted) not offered")
            }
            let v1 = try await c.createVolume(Requests.create("v1", bytes: 16 << 20, parameters: Requests.replicated)).volume
            let v2 = try await c.createVolume(Requests.create("v2", bytes: 32 << 20, parameters: Requests.replicated)).volume

            // CreateSnapshot: arguments, unknown source, idempotency, ALREADY_EXISTS.
            await expect(.invalidArgument, "no name") { try await c.createSnapshot(Self.snapshotRequest("", of: v1.volumeID)) }
            await expect(.invalidArgument, "no source") { try await c.createSnapshot(Self.snapshotRequest("s1", of: "")) }
            await expect(.notFound, "unknown source") { try await c.createSnapshot(Self.snapshotRequest("s1", of: "vol-00000000000000000000000000000000")) }
            var withParameter = Self.snapshotRequest("s1", of: v1.volumeID)
            withParameter.parameters = ["nonsense": "1"]
            await expect(.invalidArgument, "unknown parameter") { try await c.createSnapshot(withParameter) }
            let s1 = try await c.createSnapshot(Self.snapshotRequest("s1", of: v1.volumeID)).snapshot
            #expect(s1.readyToUse && s1.sourceVolumeID == v1.volumeID && s1.sizeBytes == 16 << 20 && s1.hasCreationTime)
            #expect(s1.creationTime.seconds > 1_700_000_000)
            let again = try await c.createSnapshot(Self.snapshotRequest("s1", of: v1.volumeID)).snapshot
            #expect(again.snapshotID == s1.snapshotID)
            await expect(.alreadyExists, "same name, another source") { try await c.createSnapshot(Self.snapshotRequest("s1", of: v2.volumeID)) }
            let s2 = try await c.createSnapshot(Self.snapshotRequest("s2", of: v2.volumeID)).snapshot
            let s3 = try await c.createSnapshot(Self.snapshotRequest("s3", of: v1.volumeID)).snapshot
            // A snapshot and a volume may share a name: they are different kinds of things.
            let sameName = try await c.createSnapshot(Self.snapshotRequest("v1", of: v1.volumeID)).snapshot

            // ListSnapshots: all, by id, by source, paging, bad arguments.
            let all = Set(try await Self.list(c).entries.map(\.snapshot.snapshotID))
            #expect(all == [s1.snapshotID, s2.snapshotID, s3.snapshotID, sameName.snapshotID])
            #expect(try await Self.list(c, snapshot: s2.snapshotID).entries.map(\.snapshot.snapshotID) == [s2.snapshotID])
            #expect(try await Self.list(c, snapshot: "snap-00000000000000000000000000000000").entries.isEmpty)
            #expect(try await Self.list(c, snapshot: "no-such-thing").entries.isEmpty)
            #expect(try await Self.list(c, snapshot: s2.snapshotID, volume: v1.volumeID).entries.isEmpty)
            #expect(Set(try await Self.list(c, volume: v1.volumeID).entries.map(\.snapshot.snapshotID)) == [s1.snapshotID, s3.snapshotID, sameName.snapshotID])
            #expect(try await Self.list(c, volume: "vol-00000000000000000000000000000000").entries.isEmpty)
            var paged: [String] = []
            var token = ""
            repeat {
                let page = try await Self.list(c, max: 1, token: token)
                #expect(page.entries.count == 1)
                paged += page.entries.map(\.snapshot.snapshotID)
                token = page.nextToken
            } while !token.isEmpty
            #expect(paged.count == 4 && Set(paged) == all)
            await expect(.aborted, "a token never issued") { try await Self.list(c, token: "garbage") }
            await expect(.invalidArgument, "negative max_entries") { try await Self.list(c, max: -1) }

            // Snapshots are not volumes.
            #expect(!(try await c.listVolumes(Csi_V1_ListVolumesRequest()).entries.contains { $0.volume.volumeID.hasPrefix("snap-") }))
            await expect(.notFound, "stage a snapshot") { try await n.nodeStageVolume(Requests.stage(s1.snapshotID, at: daemon.root + "/staging")) }

            // CreateVolume from a snapshot or a volume.
            let fromSnapshot = try await c.createVolume(Self.clone("c1", snapshot: s1.snapshotID)).volume
            #expect(fromSnapshot.capacityBytes == 16 << 20, "no size asked: the source's")
            #expect(fromSnapshot.contentSource.snapshot.snapshotID == s1.snapshotID)
            #expect(try await c.createVolume(Self.clone("c1", snapshot: s1.snapshotID)).volume.volumeID == fromSnapshot.volumeID)
            await expect(.alreadyExists, "same name, another source") { try await c.createVolume(Self.clone("c1", snapshot: s3.snapshotID)) }
            await expect(.alreadyExists, "same name, no source") { try await c.createVolume(Requests.create("c1", bytes: 16 << 20, parameters: Requests.replicated)) }
            await expect(.outOfRange, "smaller than the snapshot") { try await c.createVolume(Self.clone("c2", snapshot: s1.snapshotID, bytes: 8 << 20)) }
            await expect(.notFound, "unknown snapshot") { try await c.createVolume(Self.clone("c2", snapshot: "snap-00000000000000000000000000000000")) }
            await expect(.notFound, "unknown volume") { try await c.createVolume(Self.clone("c2", volume: "vol-00000000000000000000000000000000")) }
            let otherClass = try await c.createVolume(Self.clone("c-ec", snapshot: s1.snapshotID, parameters: Requests.erasure)).volume
            #expect(otherClass.volumeContext["storage.berth.dev/class"] == "ec-4-2")
            let larger = try await c.createVolume(Self.clone("c2", snapshot: s1.snapshotID, bytes: 48 << 20)).volume
            #expect(larger.capacityBytes == 48 << 20)
            // A clone grows like any volume.
            var grow = Csi_V1_ControllerExpandVolumeRequest()
            grow.volumeID = fromSnapshot.volumeID
            grow.capacityRange.requiredBytes = 40 << 20
            #expect(try await c.controllerExpandVolume(grow).capacityBytes == 40 << 20)
            let fromVolume = try await c.createVolume(Self.clone("c3", volume: v2.volumeID)).volume
            #expect(fromVolume.contentSource.volume.volumeID == v2.volumeID && fromVolume.capacityBytes == 32 << 20)
            let listed = try await c.listVolumes(Csi_V1_ListVolumesRequest()).entries.map(\.volume)
            #expect(listed.first { $0.volumeID == fromVolume.volumeID }?.contentSource.volume.volumeID == v2.volumeID)

            // DeleteSnapshot: arguments, idempotency; DeleteVolume does not delete snapshots.
            var delete = Csi_V1_DeleteSnapshotRequest()
            await expect(.invalidArgument, "no id") { try await c.deleteSnapshot(delete) }
            delete.snapshotID = "snap-00000000000000000000000000000000"
            _ = try await c.deleteSnapshot(delete)
            delete.snapshotID = "not-ours"
            _ = try await c.deleteSnapshot(delete)
            var deleteVolume = Csi_V1_DeleteVolumeRequest()
            deleteVolume.volumeID = s2.snapshotID
            _ = try await c.deleteVolume(deleteVolume)
            #expect(try await Self.list(c, snapshot: s2.snapshotID).entries.count == 1)
            delete.snapshotID = s1.snapshotID
            _ = try await c.deleteSnapshot(delete)
            _ = try await c.deleteSnapshot(delete)
            #expect(try await Self.list(c, snapshot: s1.snapshotID).entries.isEmpty)
            // A repeat of the clone's creation still succeeds with its snapshot gone.
            #expect(try await c.createVolume(Self.clone("c1", snapshot: s1.snapshotID)).volume.volumeID == fromSnapshot.volumeID)
            // Its clones stay, and a source volume can go before its snapshots.
            #expect(try await c.listVolumes(Csi_V1_ListVolumesRequest()).entries.contains { $0.volume.volumeID == fromSnapshot.volumeID })
            deleteVolume.volumeID = v2.volumeID
            _ = try await c.deleteVolume(deleteVolume)
            #expect(try await Self.list(c, snapshot: s2.snapshotID).entries.first?.snapshot.sourceVolumeID == v2.volumeID)
            await expect(.notFound, "a snapshot of a volume that is gone") { try await c.createSnapshot(Self.snapshotRequest("s4", of: v2.volumeID)) }
        }
    }

    /// Shard files on the daemon's devices.
    static func shardFiles(_ daemon: RunningDaemon) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: daemon.stateDirectory + "/devices") else { return 0 }
        var count = 0
        for case let path as String in walker {
            let name = (path as NSString).lastPathComponent
            if path.contains("/shards/"), name.count > 33, name.prefix(32).allSatisfy(\.isHexDigit) { count += 1 }
        }
        return count
    }

    /// Order in which source, snapshot and clone are deleted, per class.
    @Test(arguments: [("replicated-3", Requests.replicated, ["source", "snapshot", "clone"]),
                      ("ec-4-2", Requests.erasure, ["snapshot", "clone", "source"]),
                      ("remote-disk", Requests.single, ["clone", "source", "snapshot"])])
    func aCloneOfASnapshotReadsTheOldFilesWhileTheSourceMovesOn(className: String, parameters: [String: String], order: [String]) async throws {
        let daemon = try RunningDaemon()
        let root = daemon.root
        for dir in ["/staging-src", "/staging-clone", "/pods/src", "/pods/clone"] {
            try FileManager.default.createDirectory(atPath: root + dir, withIntermediateDirectories: true)
        }
        let src = root + "/pods/src/volume", cloned = root + "/pods/clone/volume"
        try await daemon.csi { _, c, n in
            let volume = try await c.createVolume(Requests.create("data", bytes: 64 << 20, parameters: parameters)).volume
            _ = try await n.nodeStageVolume(Requests.stage(volume.volumeID, at: root + "/staging-src"))
            _ = try await n.nodePublishVolume(Requests.publish(volume.volumeID, staging: root + "/staging-src", target: src))
            let big = Data((0..<(9 << 20) + 12345).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) })
            try big.write(to: URL(fileURLWithPath: src + "/big.bin"))
            try FileManager.default.createDirectory(atPath: src + "/dir", withIntermediateDirectories: true)
            try Data("to be deleted\n".utf8).write(to: URL(fileURLWithPath: src + "/dir/gone.txt"))
            // Written, never fsynced: the snapshot of a mounted volume flushes it first.
            let handle = try #require(FileHandle(forWritingAtPath: src + "/big.bin"))
            try handle.seek(toOffset: 4 << 20)
            try handle.write(contentsOf: Data(repeating: 0xAB, count: 8192))
            try handle.close()
            var expected = big
            expected.replaceSubrange((4 << 20)..<((4 << 20) + 8192), with: Data(repeating: 0xAB, count: 8192))

            let snapshot = try await c.createSnapshot(Self.snapshotRequest("before", of: volume.volumeID)).snapshot

            // The source moves on: overwrite, delete, create.
            let rewrite = try #require(FileHandle(forWritingAtPath: src + "/big.bin"))
            try rewrite.seek(toOffset: 1 << 20)
            try rewrite.write(contentsOf: Data(repeating: 0x5A, count: 3 << 20))
            try rewrite.synchronize()
            try rewrite.close()
            try FileManager.default.removeItem(atPath: src + "/dir/gone.txt")
            try Data("new\n".utf8).write(to: URL(fileURLWithPath: src + "/dir/new.txt"))
            var now = expected
            now.replaceSubrange((1 << 20)..<(4 << 20), with: Data(repeating: 0x5A, count: 3 << 20))

            let clone = try await c.createVolume(Self.clone("restored", snapshot: snapshot.snapshotID, parameters: parameters)).volume
            _ = try await n.nodeStageVolume(Requests.stage(clone.volumeID, at: root + "/staging-clone"))
            _ = try await n.nodePublishVolume(Requests.publish(clone.volumeID, staging: root + "/staging-clone", target: cloned))
            #expect(FileManager.default.contents(atPath: cloned + "/big.bin") == expected, "the clone reads the snapshot's bytes")
            #expect(FileManager.default.contents(atPath: cloned + "/dir/gone.txt") == Data("to be deleted\n".utf8))
            #expect(!FileManager.default.fileExists(atPath: cloned + "/dir/new.txt"))
            #expect(FileManager.default.contents(atPath: src + "/big.bin") == now, "the source reads its new bytes")
            #expect(!FileManager.default.fileExists(atPath: src + "/dir/gone.txt"))
            // A clone into another class reads the same at once, while its data is copied
            // into its own pool in the background; and after.
            let otherParameters = className == "ec-4-2" ? Requests.replicated : Requests.erasure
            let elsewhere = try await c.createVolume(Self.clone("elsewhere", snapshot: snapshot.snapshotID, parameters: otherParameters)).volume
            let elsewhereAt = root + "/staging-elsewhere"
            try FileManager.default.createDirectory(atPath: elsewhereAt, withIntermediateDirectories: true)
            _ = try await n.nodeStageVolume(Requests.stage(elsewhere.volumeID, at: elsewhereAt))
            #expect(FileManager.default.contents(atPath: elsewhereAt + "/big.bin") == expected, "another class, at once")
            var copying = -1
            for _ in 0..<300 {
                copying = try await daemon.admin { a in
                    var r = Berth_Admin_V1_NameRequest()
                    r.name = elsewhere.volumeID
                    let report = try await a.getVolume(r)
                    return (try JSONSerialization.jsonObject(with: Data(report.json.utf8)) as? [String: Any])?["copying_objects"] as? Int ?? -1
                }
                if copying == 0 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(copying == 0, "the clone's data was copied into its own class")
            #expect(FileManager.default.contents(atPath: elsewhereAt + "/big.bin") == expected, "another class, after the copy")
            #expect(FileManager.default.contents(atPath: elsewhereAt + "/dir/gone.txt") == Data("to be deleted\n".utf8))
            _ = try await n.nodeUnstageVolume(Requests.unstage(elsewhere.volumeID, at: elsewhereAt))
            var dropElsewhere = Csi_V1_DeleteVolumeRequest()
            dropElsewhere.volumeID = elsewhere.volumeID
            _ = try await c.deleteVolume(dropElsewhere)

            // The clone is writable and its changes are its own.
            try Data("clone only\n".utf8).write(to: URL(fileURLWithPath: cloned + "/dir/gone.txt"))
            #expect(FileManager.default.contents(atPath: src + "/dir/new.txt") == Data("new\n".utf8))

            // Unmount both, then delete in the given order; what is left reads the same.
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(clone.volumeID, target: cloned))
            _ = try await n.nodeUnstageVolume(Requests.unstage(clone.volumeID, at: root + "/staging-clone"))
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(volume.volumeID, target: src))
            _ = try await n.nodeUnstageVolume(Requests.unstage(volume.volumeID, at: root + "/staging-src"))
            #expect(Self.shardFiles(daemon) > 0)
            var left = Set(["source", "snapshot", "clone"])
            for item in order {
                switch item {
                case "source":
                    var r = Csi_V1_DeleteVolumeRequest()
                    r.volumeID = volume.volumeID
                    _ = try await c.deleteVolume(r)
                case "snapshot":
                    var r = Csi_V1_DeleteSnapshotRequest()
                    r.snapshotID = snapshot.snapshotID
                    _ = try await c.deleteSnapshot(r)
                default:
                    var r = Csi_V1_DeleteVolumeRequest()
                    r.volumeID = clone.volumeID
                    _ = try await c.deleteVolume(r)
                }
                left.remove(item)
                if left.contains("snapshot") {
                    // A second clone of the snapshot still reads its bytes exactly.
                    let probe = try await c.createVolume(Self.clone("probe-\(left.count)", snapshot: snapshot.snapshotID, parameters: parameters)).volume
                    let at = root + "/staging-probe-\(left.count)"
                    try FileManager.default.createDirectory(atPath: at, withIntermediateDirectories: true)
                    _ = try await n.nodeStageVolume(Requests.stage(probe.volumeID, at: at))
                    #expect(FileManager.default.contents(atPath: at + "/big.bin") == expected, "after deleting \(item)")
                    _ = try await n.nodeUnstageVolume(Requests.unstage(probe.volumeID, at: at))
                    var r = Csi_V1_DeleteVolumeRequest()
                    r.volumeID = probe.volumeID
                    _ = try await c.deleteVolume(r)
                }
            }
            #expect(Self.shardFiles(daemon) == 0, "every object is gone once nothing holds it")
            let databases = try FileManager.default.contentsOfDirectory(atPath: daemon.stateDirectory + "/volumes").filter { $0.hasSuffix(".sqlite") }
            #expect(databases.isEmpty, "\(databases)")
        }
    }
}
