import Foundation
import GRDB
import Testing
@testable import Metadata

/// The volume database's WAL is checkpointed off the writer's thread (`WalCheckpointer`):
/// the checkpoints happen, the pages reach the database file while it is open, and the WAL
/// is reused from its start instead of growing with every change.
@Suite struct WalCheckpointerTests {
    func n(_ s: String) -> [UInt8] { Array(s.utf8) }

    func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? -1
    }

    @Test func theWalIsCheckpointedAndReusedWhileTheWriterGoesOn() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-wal-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/v.sqlite"
        // A low threshold, so that the rounds below are many thresholds' worth of frames.
        let db = try VolumeDatabase(path: path, volumeID: "v", checkpointFrames: 100)
        let checkpointer = try #require(db.checkpointer)
        try db.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: 1)
        // Rounds of 2,000 creates and their unlinks: without checkpoints the WAL holds every
        // frame of them (several MB; a threshold's worth is 0.4 MB).
        var frames = 0
        for round in 0..<12 {
            for i in 0..<2_000 {
                _ = try db.create(parent: 1, name: n("r\(round)-\(i)"), kind: InodeRecord.regular, mode: 0o644,
                                  uid: 0, gid: 0, nowNs: 2)
            }
            for i in 0..<2_000 { _ = try db.unlink(parent: 1, name: n("r\(round)-\(i)"), nowNs: 3) { _ in true } }
            try db.commitNamespaceChanges()
            frames = max(frames, fileSize(path + "-wal") / 4_120)
        }
        var waitedMs = 0
        while checkpointer.checkpoints.load(ordering: .relaxed) == 0, waitedMs < 10_000 {
            Thread.sleep(forTimeInterval: 0.01); waitedMs += 10
        }
        #expect(checkpointer.checkpoints.load(ordering: .relaxed) > 0)
        // The pages reached the database file while it is open (it starts at one page)…
        #expect(fileSize(path) > 4_096 * 8, "WAL \(fileSize(path + "-wal")) bytes")
        // …and the WAL was restarted rather than grown: the writer's own checkpoint at
        // `restartFrames` bounds it, plus one batch.
        let walLimit = 2 * Int(checkpointer.restartFrames) * 4_120
        #expect(fileSize(path + "-wal") < walLimit, "WAL \(fileSize(path + "-wal")) bytes, most frames seen \(frames)")
        // Everything reads back, from this connection and a fresh one.
        #expect(try db.readdir(ino: 1, offset: 0, limit: 10).isEmpty)
        _ = try db.create(parent: 1, name: n("kept"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 4)
        try db.commitNamespaceChanges()
        let other = try DatabaseQueue(path: path)
        let names = try other.read { d in try Data.fetchAll(d, sql: "SELECT name FROM dentry") }
        #expect(names == [Data("kept".utf8)])
        #expect(try other.read { d in try String.fetchOne(d, sql: "PRAGMA integrity_check") } == "ok")
    }
}
