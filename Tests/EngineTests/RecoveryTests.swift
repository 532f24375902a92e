import Foundation
import Placement
@testable import Storage
import Testing
@testable import Engine

/// Degraded writes and their recovery: with a device unreachable, writes go on and their
/// PGs are recorded; nothing is rebuilt while it is away; once it answers, the mover
/// rebuilds exactly the shards it missed and the PGs are clean again.
@Suite struct RecoveryTests {
    @Test func degradedWritesAreRecoveredWhenTheDeviceReturns() throws {
        let dir = TemporaryDirectory()
        let engine = try Fixture.engine(dir)
        let volume = try engine.createVolume(name: "v", className: "ec-4-2", capacityBytes: 64 << 20)
        let away = DeviceID("h0-d0")
        let root = try #require(engine.objects.device(away) as? ShardStore).root
        try FileManager.default.moveItem(atPath: root, toPath: root + ".away")
        var written: [(ObjectID, [UInt8])] = []
        for i in 0..<40 {
            let bytes = Fixture.bytes(20_000 + i, seed: UInt64(i))
            written.append((try engine.writeObject(volume: volume.id, bytes: bytes), bytes))
        }
        let pool = try engine.pool(ofVolume: volume.id)
        let missed = try written.filter { try engine.objects.placement(pool: pool, object: $0.0).current.contains(away) }
        #expect(!missed.isEmpty, "no object placed on \(away): the test shows nothing")
        let pending = try engine.pgsNeedingRecovery()
        #expect(Set(pending.map(\.pg)) == Set(missed.map { $0.0.pg(count: 32) }))
        #expect(try engine.status().pgsDegraded >= pending.count)
        // Away: nothing can be rebuilt, nothing is forgotten.
        _ = engine.move()
        #expect(try engine.pgsNeedingRecovery().count == pending.count)
        for (id, bytes) in written { #expect(try engine.readObject(volume: volume.id, id: id).bytes == bytes) }
        // Back: the missed shards are rebuilt, and only those.
        try FileManager.default.moveItem(atPath: root + ".away", toPath: root)
        let result = engine.move()
        #expect(result.failures.isEmpty, "\(result.failures)")
        #expect(try engine.pgsNeedingRecovery().isEmpty)
        #expect(try engine.status().pgsDegraded == 0)
        let store = try #require(engine.objects.device(away) as? ShardStore)
        for (id, _) in missed {
            let position = try engine.objects.placement(pool: pool, object: id).current.firstIndex(of: away)!
            #expect(store.contains(object: id, position: position))
        }
        #expect(try store.allShards().count == missed.count)
    }
}
