import CSIProtocol
import Foundation
import GRPCCore
import TestSupport
import Testing

/// `VolumeDriver --metadata postgres://…`: the cluster state in a real PostgreSQL server
/// (`TestPostgres`), the embedded default's engine and mounts beside it.
@Suite(.serialized) struct PostgresMetadataTests {
    static func list(_ daemon: RunningDaemon) async throws -> [String] {
        try await daemon.csi { _, c, _ in
            try await c.listVolumes(Csi_V1_ListVolumesRequest()).entries.map(\.volume.volumeID)
        }
    }

    /// A new cluster in an empty database, a volume written through FUSE, the daemon
    /// restarted: the volume and its bytes are there; another daemon on the same database
    /// sees the same cluster state; nothing of it is in the state directory.
    @Test func theClusterStateLivesInPostgres() async throws {
        let url = try TestPostgres.database()
        let daemon = try RunningDaemon(arguments: ["--metadata", url])
        #expect(!FileManager.default.fileExists(atPath: daemon.stateDirectory + "/cluster.sqlite"))
        #expect(daemon.log().contains("cluster state"))
        let id = try await daemon.csi { _, c, _ in
            try await c.createVolume(Requests.create("pg-1", bytes: 64 << 20, parameters: Requests.replicated)).volume.volumeID
        }
        let staging = daemon.root + "/stage", target = daemon.root + "/target"
        try await daemon.csi { _, _, n in
            _ = try await n.nodeStageVolume(Requests.stage(id, at: staging))
            _ = try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: target))
        }
        let bytes = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let handle = try #require(FileHandle(forWritingAtPath: target + "/f") ?? {
            FileManager.default.createFile(atPath: target + "/f", contents: nil)
            return FileHandle(forWritingAtPath: target + "/f")
        }())
        try handle.write(contentsOf: bytes)
        try handle.synchronize()
        try handle.close()
        try await daemon.csi { _, _, n in
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(id, target: target))
            _ = try await n.nodeUnstageVolume(Requests.unstage(id, at: staging))
        }

        try daemon.restart()
        #expect(try await Self.list(daemon) == [id])
        try await daemon.csi { _, _, n in
            _ = try await n.nodeStageVolume(Requests.stage(id, at: staging))
            _ = try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: target))
        }
        #expect(FileManager.default.contents(atPath: target + "/f") == bytes)
        try await daemon.csi { _, _, n in
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(id, target: target))
            _ = try await n.nodeUnstageVolume(Requests.unstage(id, at: staging))
        }

        // A second daemon (its own state directory) on the same database does not serve while
        // the first leads (the controller lock): it says STANDBY, not READY …
        #expect { _ = try RunningDaemon(nodeID: "node-b", arguments: ["--metadata", url], standbyIsFailure: true) } throws: { "\($0)".contains("STANDBY") }
        // … and once it stops, finds the same cluster (it bootstraps nothing: the database is not empty).
        daemon.stop()
        let other = try RunningDaemon(nodeID: "node-b", arguments: ["--metadata", url])
        #expect(try await Self.list(other) == [id])
        #expect(!other.log().contains("embedded default cluster"))
        other.stop()
    }

    /// A volume follows its pod: written and fsynced on node A, whose daemon is then
    /// SIGKILLed (FUSE session and all); node B — another daemon, its own state directory,
    /// nothing of A's on it — stages and publishes the same volume and reads every fsynced
    /// byte, within 15 s of the stage call (A's lease runs out first). B's writes are the
    /// volume's from then on: A, mounting it again later, gets them.
    @Test func aVolumeFollowsItsPodToAnotherNode() async throws {
        let url = try TestPostgres.database()
        let a = try RunningDaemon(nodeID: "node-a", arguments: ["--metadata", url, "--fuse-keeper", "off"])
        let id = try await a.csi { _, c, _ in
            try await c.createVolume(Requests.create("follow-1", bytes: 64 << 20, parameters: Requests.replicated)).volume.volumeID
        }
        let staging = a.root + "/stage", target = a.root + "/target"
        try await a.csi { _, _, n in
            _ = try await n.nodeStageVolume(Requests.stage(id, at: staging))
            _ = try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: target))
        }
        let bytes = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        try FileManager.default.createDirectory(atPath: target + "/dir/sub", withIntermediateDirectories: true)
        for path in ["/f", "/dir/sub/g"] {
            FileManager.default.createFile(atPath: target + path, contents: nil)
            let handle = try #require(FileHandle(forWritingAtPath: target + path))
            try handle.write(contentsOf: bytes)
            try handle.synchronize()
            try handle.close()
        }
        #expect(symlink("dir/sub/g", target + "/link") == 0)
        let directory = open(target + "/dir/sub", O_RDONLY | O_DIRECTORY)
        #expect(fsync(directory) == 0)
        close(directory)
        // Node A dies: its daemon and its FUSE session, no unstage, no release.
        a.kill9()
        for path in [target, staging] { umount2(path, Int32(MNT_DETACH)) }

        let b = try RunningDaemon(nodeID: "node-b", arguments: ["--metadata", url])
        let stagingB = b.root + "/stage", targetB = b.root + "/target"
        let started = ContinuousClock.now
        try await b.csi { _, _, n in
            _ = try await n.nodeStageVolume(Requests.stage(id, at: stagingB))
            _ = try await n.nodePublishVolume(Requests.publish(id, staging: stagingB, target: targetB))
        }
        #expect(ContinuousClock.now - started < .seconds(15))
        #expect(FileManager.default.contents(atPath: targetB + "/f") == bytes)
        #expect(FileManager.default.contents(atPath: targetB + "/dir/sub/g") == bytes)
        var link = [CChar](repeating: 0, count: 64)
        #expect(readlink(targetB + "/link", &link, 63) == 9 && String(cString: link) == "dir/sub/g")
        FileManager.default.createFile(atPath: targetB + "/from-b", contents: Data("b".utf8))
        let handle = try #require(FileHandle(forUpdatingAtPath: targetB + "/from-b"))
        try handle.synchronize()
        try handle.close()
        let shown = try ProvisionctlTests.ctl(b, "volume", "show", id, "--output", "json").json["lease"] as? [String: Any]
        #expect(shown?["holder"] as? String == "node-b")

        // An admin breaks B's lease: B is fenced off. Its next fsync fails with EIO and
        // what it wrote after the break never lands.
        let released = try ProvisionctlTests.ctl(b, "volume", "release", id, "--yes")
        #expect(released.status == 0 && released.out.contains("node-b"), "\(released.err)")
        // (The create itself fails if B's lease renewal noticed first; else the fsync does.)
        let late = open(targetB + "/after-release", O_CREAT | O_WRONLY, 0o644)
        let outcome: Int32 = late < 0 ? errno : write(late, "lost", 4) != 4 ? errno : fsync(late) != 0 ? errno : 0
        #expect(outcome == EIO)
        if late >= 0 { close(late) }

        // B lets the volume go; A comes back (one daemon at a time holds the cluster state
        // until controllers elect a leader) and mounts it again: its own copy is stale, so it
        // gets the store's, B's fsynced file included, nothing B wrote after the break.
        try await b.csi { _, _, n in
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(id, target: targetB))
            _ = try await n.nodeUnstageVolume(Requests.unstage(id, at: stagingB))
        }
        b.stop()
        try a.start()
        let again = ContinuousClock.now
        try await a.csi { _, _, n in
            _ = try await n.nodeStageVolume(Requests.stage(id, at: staging))
            _ = try await n.nodePublishVolume(Requests.publish(id, staging: staging, target: target))
        }
        #expect(ContinuousClock.now - again < .seconds(5))  // released: no wait for a lease to run out
        #expect(FileManager.default.contents(atPath: target + "/from-b") == Data("b".utf8))
        #expect(!FileManager.default.fileExists(atPath: target + "/after-release"))
        #expect(FileManager.default.contents(atPath: target + "/f") == bytes)
        try await a.csi { _, _, n in
            _ = try await n.nodeUnpublishVolume(Requests.unpublish(id, target: target))
            _ = try await n.nodeUnstageVolume(Requests.unstage(id, at: staging))
        }
        a.stop()
    }

    /// A malformed URL, or a server that does not answer: the daemon exits at once, non-zero,
    /// saying why — never a silent fallback to SQLite.
    @Test(arguments: ["postgres://nobody@127.0.0.1:1/berth?sslmode=disable", "postgres://127.0.0.1/berth", "mysql://u@h/d"])
    func aBadMetadataURLStopsTheDaemon(url: String) throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("berth-pgbad-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (status, message) = try RunningDaemon.refusedStart(["--endpoint", "unix://" + root + "/csi.sock", "--state-dir", root + "/state",
                                                                "--admin-socket", root + "/admin.sock", "--metrics-address", "off",
                                                                "--fuse-keeper", "off", "--metadata", url])
        #expect(status != nil && status != 0, "--metadata \(url): status \(String(describing: status))")
        #expect(message.contains("metadata") || message.contains("connect"), "\(message)")
        #expect(!FileManager.default.fileExists(atPath: root + "/state/cluster.sqlite"))
    }
}
