import Foundation
import Testing
@testable import Metadata

/// `pg_recovery`: a PG marked by a degraded write while recovery ran is not cleared by
/// that pass (its generation moved on), so the write's missing shard is not forgotten.
@Suite struct PGRecoveryTests {
    @Test func aMarkDuringRecoveryKeepsThePG() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-pgr-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let db = try ClusterDatabase(path: directory + "/cluster.sqlite")
        try db.markForRecovery(poolID: 2, pg: 7)
        try db.markForRecovery(poolID: 1, pg: 3)
        let seen = try #require(try db.pgsNeedingRecovery().first { $0.poolID == 2 && $0.pg == 7 })
        // A write marks it again while the pass that saw `seen` runs.
        try db.markForRecovery(poolID: 2, pg: 7)
        #expect(try !db.clearRecovery(poolID: 2, pg: 7, generation: seen.generation))
        #expect(try db.pgsNeedingRecovery().map { "\($0.poolID)/\($0.pg)" } == ["1/3", "2/7"])
        let now = try #require(try db.pgsNeedingRecovery().first { $0.poolID == 2 })
        #expect(now.generation == seen.generation + 1)
        #expect(try db.clearRecovery(poolID: 2, pg: 7, generation: now.generation))
        #expect(try db.pgsNeedingRecovery().map { "\($0.poolID)/\($0.pg)" } == ["1/3"])
    }
}
