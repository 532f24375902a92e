import Foundation
import Placement
import StorageClasses
import Synchronization
import Testing
@testable import Storage

/// A rebuild reads from every surviving holder of a PG, not from its first copy only: with
/// one position of a 3-copy PG lost, its objects' shards are rebuilt from both survivors.
@Suite struct RebuildSourcesTests {
    /// A shard store that counts whole-shard reads.
    final class Counted: ShardDevice {
        let store: ShardStore
        let reads = Atomic<Int>(0)
        init(_ store: ShardStore) { self.store = store }
        var id: DeviceID { store.id }
        var capacityBytes: Int { store.capacityBytes }
        var usedBytes: Int { store.usedBytes }
        var isReachable: Bool { store.isReachable }
        func write(object: ObjectID, position: Int, objectSize: Int, payload: UnsafeRawBufferPointer,
                   checksum: ShardStore.Checksum, renameAfter: Promise<Bool>?) throws(StorageError) {
            try store.write(object: object, position: position, objectSize: objectSize, payload: payload, checksum: checksum, renameAfter: renameAfter)
        }
        func read(object: ObjectID, position: Int) throws(StorageError) -> ShardStore.Shard {
            reads.add(1, ordering: .relaxed)
            return try store.read(object: object, position: position)
        }
        func read(object: ObjectID, position: Int, range: Range<Int>) throws(StorageError) -> (bytes: [UInt8], objectSize: Int) {
            try store.read(object: object, position: position, range: range)
        }
        func delete(_ shards: [(object: ObjectID, position: Int)]) -> [StorageError] { store.delete(shards) }
        func allShards() throws(StorageError) -> [(object: ObjectID, position: Int)] { try store.allShards() }
        func hasShard(object: ObjectID, position: Int) throws(StorageError) -> Bool { try store.hasShard(object: object, position: position) }
    }

    @Test func aLostCopyIsRebuiltFromEverySurvivor() throws {
        let cluster = try TestCluster()
        let counted = Dictionary(uniqueKeysWithValues: cluster.stores.map { ($0.key, Counted($0.value)) })
        let store = ObjectStore(layout: .init(current: try Placer(map: cluster.map)), devices: Array(counted.values), codecs: cluster.codecs)
        // Forty objects of one PG of the 3-copy pool.
        let generator = ObjectIDGenerator(node: 7)
        var ids: [ObjectID] = []
        while ids.count < 40 {
            let id = generator.next()
            if id.pg(count: 32) == 5 { ids.append(id) }
        }
        for (i, id) in ids.enumerated() { try store.put(pool: 1, object: id, bytes: randomBytes(10_000 + i, seed: UInt64(i))) }
        let holders = try store.placement(pool: 1, object: ids[0]).current
        let spare = DeviceID("spare")
        let target = Counted(try ShardStore(id: spare, root: cluster.path(of: spare), capacityBytes: 1 << 30))
        store.attach(target)
        for holder in holders { counted[holder]!.reads.store(0, ordering: .relaxed) }
        // Position 2's device is lost; its shards are rebuilt on the spare.
        try cluster.destroy(holders[2])
        for id in ids { #expect(try store.moveShard(pool: 1, object: id, position: 2, from: nil, to: spare) > 0) }
        let reads = holders.prefix(2).map { counted[$0]!.reads.load(ordering: .relaxed) }
        #expect(reads.reduce(0, +) == 40)
        #expect(reads == [20, 20], "reads per surviving holder: \(reads)")  // in turn
    }
}
