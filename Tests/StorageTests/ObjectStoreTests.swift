import Foundation
import Placement
import Testing
@testable import Storage

@Suite struct ObjectStoreTests {
    let generator = ObjectIDGenerator(node: 1)

    /// Every class, object sizes from empty to the object limit (two chunks).
    @Test(arguments: [1, 2, 3] as [UInt32])
    func roundTripsForEverySize(pool: UInt32) throws {
        let cluster = try TestCluster()
        var written: [(ObjectID, [UInt8])] = []
        for size in [0, 1, 63, 64, 65, TestCluster.chunk - 1, TestCluster.chunk, TestCluster.chunk + 1, TestCluster.limit - 1, TestCluster.limit] {
            let id = generator.next()
            let bytes = randomBytes(size, seed: UInt64(size) + UInt64(pool) * 1000)
            try cluster.store.put(pool: pool, object: id, bytes: bytes)
            written.append((id, bytes))
        }
        // "Many chunks": a file of 20 objects.
        for i in 0..<20 {
            let id = generator.next()
            let bytes = randomBytes(TestCluster.chunk, seed: UInt64(i))
            try cluster.store.put(pool: pool, object: id, bytes: bytes)
            written.append((id, bytes))
        }
        for (id, bytes) in written {
            let result = try cluster.store.get(pool: pool, object: id)
            expectSame(result.bytes, bytes)
            #expect(!result.isDegraded)
        }
        // Each object's shards are on its PG's devices, one per position.
        let (id, _) = written.last!
        let devices = try cluster.store.placement(pool: pool, object: id).current
        #expect(devices.count == [1: 3, 2: 6, 3: 1][pool])
        for (position, device) in devices.enumerated() {
            #expect(cluster.stores[device]!.contains(object: id, position: position))
        }
        #expect(throws: StorageError.objectTooLarge(sizeBytes: TestCluster.limit + 1, limitBytes: TestCluster.limit)) {
            try cluster.store.put(pool: pool, object: generator.next(), bytes: randomBytes(TestCluster.limit + 1, seed: 9))
        }
    }

    /// Two whole hosts gone (their device directories removed): 3-copy and EC 4+2 still
    /// read everything, and say the read was degraded.
    @Test func twoHostsLostEverythingStillReads() throws {
        let cluster = try TestCluster()
        var objects: [(UInt32, ObjectID, [UInt8])] = []
        for i in 0..<60 {
            let pool: UInt32 = i % 2 == 0 ? 1 : 2
            let id = generator.next()
            let bytes = randomBytes(1000 + i * 997, seed: UInt64(i))
            try cluster.store.put(pool: pool, object: id, bytes: bytes)
            objects.append((pool, id, bytes))
        }
        for d in ["h1-d0", "h1-d1", "h4-d0", "h4-d1"] as [DeviceID] { try cluster.destroy(d) }
        var degraded = 0
        for (pool, id, bytes) in objects {
            let result = try cluster.store.get(pool: pool, object: id)
            expectSame(result.bytes, bytes)
            if result.isDegraded {
                degraded += 1
                #expect(result.problems.allSatisfy { if case .deviceUnavailable = $0 { true } else { false } })
            }
        }
        #expect(degraded > 0)
    }

    /// A single copy on a lost device cannot be read, and the error says why.
    @Test func singleCopyOnALostDeviceIsUnreadable() throws {
        let cluster = try TestCluster()
        let id = generator.next()
        try cluster.store.put(pool: 3, object: id, bytes: [1, 2, 3])
        let device = try cluster.store.placement(pool: 3, object: id).current[0]
        try cluster.destroy(device)
        #expect(throws: StorageError.self) { _ = try cluster.store.get(pool: 3, object: id) }
        do { _ = try cluster.store.get(pool: 3, object: id) } catch {
            #expect("\(error)".contains("0 of 1 needed shards readable"))
            #expect("\(error)".contains("\(device)"))
        }
    }

    /// Range reads of every class match the object's bytes, with and without the size
    /// hint, across block and (EC) shard boundaries; with a device destroyed or a shard
    /// corrupt they still return the right bytes and report the problem.
    @Test(arguments: [1, 2, 3] as [UInt32])
    func rangeReads(pool: UInt32) throws {
        let cluster = try TestCluster()
        let id = generator.next()
        let size = TestCluster.chunk - 3
        let bytes = randomBytes(size, seed: 31 + UInt64(pool))
        try cluster.store.put(pool: pool, object: id, bytes: bytes)
        let quarter = size / 4
        let edges = [0, 1, 4095, 4096, quarter - 1, quarter, quarter + 1, 2 * quarter + 5000, size - 1, size]
        for lower in edges {
            for upper in edges where upper > lower {
                for hint in [size, nil] as [Int?] {
                    let result = try cluster.store.get(pool: pool, object: id, range: lower..<upper, objectSize: hint)
                    expectSame(result.bytes, Array(bytes[lower..<upper]), "\(lower)..<\(upper)")
                    #expect(!result.isDegraded)
                }
            }
        }
        // Corrupt the first block of shard 0's payload.
        let devices = try cluster.store.placement(pool: pool, object: id).current
        let file = cluster.stores[devices[0]]!.path(id, 0)
        var data = try Data(contentsOf: URL(fileURLWithPath: file))
        let header = try Array(data[0..<ShardHeader.size]).withUnsafeBytes { try ShardHeader.decode($0).get() }
        data[header.payloadOffset + 10] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: file))
        let problem = StorageError.corruptShard(device: devices[0], shard: "\(id).0", reason: "payload checksum mismatch in block 0")
        if pool == 3 {
            #expect(throws: StorageError.self) { _ = try cluster.store.get(pool: pool, object: id, range: 0..<100, objectSize: size) }
        } else {
            let before = cluster.store.degradedReads
            let result = try cluster.store.get(pool: pool, object: id, range: 0..<100, objectSize: size)
            expectSame(result.bytes, Array(bytes[0..<100]))
            #expect(result.problems.contains(problem))
            #expect(cluster.store.degradedReads > before)
            // A range the corrupt block does not cover reads clean.
            #expect(!(try cluster.store.get(pool: pool, object: id, range: 8192..<8200, objectSize: size)).isDegraded)
        }
        // A destroyed device: the other copies, or reconstruction.
        if pool != 3 {
            try cluster.destroy(devices[1])
            let result = try cluster.store.get(pool: pool, object: id, range: 0..<size, objectSize: size)
            expectSame(result.bytes, bytes)
            #expect(result.isDegraded)
        }
    }

    /// A flipped byte in one shard: the right data, and the checksum error reported.
    @Test(arguments: [1, 2] as [UInt32])
    func corruptShardGivesRightDataAndReport(pool: UInt32) throws {
        let cluster = try TestCluster()
        let id = generator.next()
        let bytes = randomBytes(50_000, seed: 77)
        try cluster.store.put(pool: pool, object: id, bytes: bytes)
        let device = try cluster.store.placement(pool: pool, object: id).current[0]
        let file = cluster.stores[device]!.path(id, 0)
        var data = try Data(contentsOf: URL(fileURLWithPath: file))
        data[ShardHeader.size + 123] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: file))
        let result = try cluster.store.get(pool: pool, object: id)
        expectSame(result.bytes, bytes)
        #expect(result.problems == [.corruptShard(device: device, shard: "\(id).0", reason: "payload checksum mismatch in block 0")])
    }

    /// A full device fails the put with "no space" and leaves no partial shards behind.
    @Test func fullDeviceFailsThePutCleanly() throws {
        let cluster = try TestCluster(capacityBytes: 200_000)
        var stored: [ObjectID] = []
        var failure: StorageError? = nil
        for i in 0..<200 {
            let id = generator.next()
            do {
                try cluster.store.put(pool: 1, object: id, bytes: randomBytes(TestCluster.chunk, seed: UInt64(i)))
                stored.append(id)
            } catch {
                failure = error
                for device in try cluster.store.placement(pool: 1, object: id).current {
                    for position in 0..<3 { #expect(!cluster.stores[device]!.contains(object: id, position: position)) }
                }
                break
            }
        }
        guard case .noSpace = failure else { Issue.record("expected noSpace, got \(String(describing: failure))"); return }
        for (i, id) in stored.enumerated() {
            expectSame(try cluster.store.get(pool: 1, object: id).bytes, randomBytes(TestCluster.chunk, seed: UInt64(i)))
        }
    }

    @Test func deleteRemovesEveryShardAndIsIdempotent() throws {
        let cluster = try TestCluster()
        let id = generator.next()
        try cluster.store.put(pool: 2, object: id, bytes: randomBytes(10_000, seed: 3))
        let before = cluster.stores.values.reduce(0) { $0 + $1.usedBytes }
        #expect(before > 0)
        #expect(try cluster.store.delete(pool: 2, object: id).isEmpty)
        #expect(cluster.stores.values.reduce(0) { $0 + $1.usedBytes } == 0)
        #expect(try cluster.store.delete(pool: 2, object: id).isEmpty)
        #expect(throws: StorageError.self) { _ = try cluster.store.get(pool: 2, object: id) }
    }

    /// Many objects at once (a deleted file's): every shard of every object goes, on every
    /// device, and the devices' use with them; objects already gone count as removed; a
    /// device that is gone is reported and the others still remove theirs.
    @Test(arguments: [1, 2, 3] as [UInt32])
    func deletingManyObjectsRemovesEveryShard(pool: UInt32) throws {
        let cluster = try TestCluster()
        let ids = (0..<40).map { _ in generator.next() }
        for (i, id) in ids.enumerated() { try cluster.store.put(pool: pool, object: id, bytes: randomBytes(3_000 + i, seed: UInt64(i))) }
        #expect(try cluster.store.delete(pool: pool, object: ids[0]).isEmpty)
        #expect(try cluster.store.delete(pool: pool, objects: Array(ids[0..<20])).isEmpty)
        for id in ids[0..<20] {
            for store in cluster.stores.values { #expect(!(0..<6).contains { store.contains(object: id, position: $0) }) }
        }
        for (i, id) in ids.enumerated().dropFirst(20) {
            #expect(try cluster.store.get(pool: pool, object: id).bytes == randomBytes(3_000 + i, seed: UInt64(i)))
        }
        // One device gone: its shards are reported, everyone else's removed.
        let lost = try cluster.store.placement(pool: pool, object: ids[20]).current[0]
        try cluster.destroy(lost)
        let failures = try cluster.store.delete(pool: pool, objects: Array(ids[20...]))
        #expect(!failures.isEmpty && failures.allSatisfy { if case .deviceUnavailable(lost, _) = $0 { true } else { false } })
        #expect(cluster.stores.filter { $0.key != lost }.values.reduce(0) { $0 + $1.usedBytes } == 0)
    }

    /// A whole host fails: the plan's shards are rebuilt on their new devices, after which
    /// every object reads without degradation from the new epoch alone.
    @Test func movingShardsRestoresRedundancy() throws {
        let cluster = try TestCluster(hosts: 7)
        var objects: [(UInt32, ObjectID, [UInt8])] = []
        for i in 0..<90 {
            let pool = UInt32(i % 3 + 1)
            let id = generator.next()
            let bytes = randomBytes(3000 + i * 101, seed: UInt64(i))
            try cluster.store.put(pool: pool, object: id, bytes: bytes)
            objects.append((pool, id, bytes))
        }
        let lost: [DeviceID] = ["h2-d0", "h2-d1"]
        // Single copies on the lost host would be gone for good: keep them off it.
        objects.removeAll { $0.0 == 3 && lost.contains(try! cluster.store.placement(pool: 3, object: $0.1).current[0]) }
        let old = cluster.map
        let next = try old.nextEpoch(lost.map { .setState($0, .out) })
        for d in lost { try cluster.destroy(d) }
        let plan = try MovementPlan(from: old, to: next)
        var locations: [UInt32: [Int: [DeviceID]]] = [:]
        let oldPlacer = try Placer(map: old)
        for move in plan.moves { locations[move.pool, default: [:]][move.pg] = try oldPlacer.devices(pool: move.pool, pg: move.pg) }
        cluster.store.setLayout(.init(current: try Placer(map: next), locations: locations))
        // While moving, everything reads (from the previous epoch or by reconstruction).
        for (pool, id, bytes) in objects { expectSame(try cluster.store.get(pool: pool, object: id).bytes, bytes) }
        var rebuilt = 0
        for (pool, id, _) in objects {
            let pg = id.pg(count: 32)
            for move in plan.moves where move.pool == pool && move.pg == pg {
                rebuilt += try cluster.store.moveShard(pool: pool, object: id, position: move.position, from: move.from, to: move.to)
            }
        }
        #expect(rebuilt > 0)
        cluster.store.setLayout(.init(current: try Placer(map: next)))
        for (pool, id, bytes) in objects {
            let result = try cluster.store.get(pool: pool, object: id)
            expectSame(result.bytes, bytes)
            #expect(!result.isDegraded, "\(result.problems)")
        }
    }

    /// Degraded writes: with a device of the PG unreachable, 3-copy keeps 2 copies and EC
    /// 4+2 keeps 5 shards, acknowledged, naming the missing position; the object reads
    /// back, and rebuilding the missing shard (`moveShard` from nowhere) completes it. One
    /// more loss is refused: EC with two shards missing, a single copy with its only device.
    @Test func degradedWritesKeepTheMinimumAndSayWhatIsMissing() throws {
        let cluster = try TestCluster()
        for pool: UInt32 in [1, 2] {
            let id = generator.next()
            let bytes = randomBytes(100_000 + Int(pool), seed: UInt64(pool))
            let devices = try cluster.store.placement(pool: pool, object: id).current
            try cluster.destroy(devices[1])
            let missing = try cluster.store.put(pool: pool, object: id, bytes: bytes)
            #expect(missing == [1])
            let read = try cluster.store.get(pool: pool, object: id)
            expectSame(read.bytes, bytes)
            // The device comes back (a host that returns): its shard is rebuilt, the delta only.
            _ = try ShardStore(id: devices[1], root: cluster.path(of: devices[1]), capacityBytes: 1 << 30)
            #expect(try cluster.store.moveShard(pool: pool, object: id, position: 1, from: nil, to: devices[1]) > 0)
            #expect(try cluster.store.moveShard(pool: pool, object: id, position: 0, from: nil, to: devices[0]) == 0)
            #expect(cluster.stores[devices[1]]!.contains(object: id, position: 1))
        }
        #expect(cluster.store.degradedWrites == 2)
        // EC with two members gone: below k + 1, refused, nothing left behind.
        let id = generator.next()
        let devices = try cluster.store.placement(pool: 2, object: id).current
        try cluster.destroy(devices[2])
        try cluster.destroy(devices[4])
        #expect(throws: StorageError.self) { try cluster.store.put(pool: 2, object: id, bytes: randomBytes(50_000, seed: 3)) }
        for (position, device) in devices.enumerated() where ![2, 4].contains(position) {
            #expect(!cluster.stores[device]!.contains(object: id, position: position))
        }
        // A single copy whose device is gone: refused.
        let single = generator.next()
        try? cluster.destroy(try cluster.store.placement(pool: 3, object: single).current[0])
        #expect(throws: StorageError.self) { try cluster.store.put(pool: 3, object: single, bytes: [1, 2, 3]) }
    }
}
