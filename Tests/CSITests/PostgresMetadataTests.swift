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

        // A second daemon (its own state directory) on the same database is refused while
        // the first keeps the cluster state (the controller lock) …
        #expect(throws: (any Error).self) { _ = try RunningDaemon(nodeID: "node-b", arguments: ["--metadata", url]) }
        // … and once it stops, finds the same cluster (it bootstraps nothing: the database is not empty).
        daemon.stop()
        let other = try RunningDaemon(nodeID: "node-b", arguments: ["--metadata", url])
        #expect(try await Self.list(other) == [id])
        #expect(!other.log().contains("embedded default cluster"))
        other.stop()
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
