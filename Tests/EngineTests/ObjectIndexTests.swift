import Foundation
import TestEngines
import Metadata
import Placement
@testable import Storage
import StorageClasses
import Testing
import TestSupport
@testable import Engine

/// The object index (`pg_object`) against its oracle, the whole scan it replaced: every
/// volume's database read for the objects of a PG. Movement, plans, degraded counts and
/// start-up read the index; these tests check they see exactly what the scan sees.
@Suite struct ObjectIndexTests {
    let dir = TemporaryDirectory("berth-index")

    /// The oracle: the objects of one PG the mover must copy (live and writing), found by
    /// reading every volume's database, as the engine did before the index.
    static func scan(_ engine: Engine, pool: UInt32, pg: Int) throws -> [ObjectRecord] {
        var result: [ObjectRecord] = []
        for volume in try engine.volumes() where volume.state == .available {
            let vdb = try engine.temporaryVolumeDatabase(volume.id)
            result += try vdb.objects(poolID: pool, pg: pg, states: [.live, .writing])
        }
        return result.sorted { $0.id < $1.id }
    }

    /// Bytes the oracle says `moves` carry: per moved position, the shard files of every
    /// object of its PG.
    static func oracleBytes(_ engine: Engine, pool: UInt32, pgs: [Int]) throws -> Int64 {
        let codec = try #require(engine.state.withLock { $0.entry(pool: pool)?.codec })
        var total: Int64 = 0
        for pg in pgs {
            for object in try scan(engine, pool: pool, pg: pg) {
                total += Int64(ShardHeader.fileBytes(payloadLength: codec.shardPayloadBytes(objectSize: Int(object.sizeBytes))))
            }
        }
        return total
    }

    /// Every PG of every pool: the index lists the same objects as the scan.
    static func expectIndexMatchesScan(_ engine: Engine, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for entry in engine.classes() {
            for pg in 0..<entry.storageClass.pgCount {
                let indexed = try engine.objectsIn(pool: entry.poolID, pg: pg).map(\.id)
                let scanned = try scan(engine, pool: entry.poolID, pg: pg).map(\.id)
                #expect(indexed == scanned, "\(context): pool \(entry.poolID) pg \(pg)", sourceLocation: sourceLocation)
            }
        }
    }

    /// Random volumes (some empty, some closed, some deleted), random objects (some
    /// deleted), then a random cluster change: the index lists what the scan lists, `plan`
    /// predicts the bytes the scan computes, and the mover moves exactly those.
    @Test(arguments: [11, 23, 37, 41, 59] as [UInt64])
    func indexDrivenMovementMatchesAWholeScan(seed: UInt64) throws {
        var rng = SeededRandom(seed: seed)
        let engine = try Fixture.engine(dir)
        var volumes: [String] = []
        for i in 0..<(4 + Int(rng.next() % 8)) {
            let c = Fixture.classes[Int(rng.next() % 3)]
            volumes.append(try engine.createVolume(name: "v\(i)", className: c.name, capacityBytes: 8 << 20).id)
        }
        var written: [(volume: String, id: ObjectID)] = []
        for _ in 0..<(20 + Int(rng.next() % 30)) {
            let volume = volumes[Int(rng.next() % UInt64(volumes.count - 1))]  // the last stays empty
            let size = Int(rng.next() % UInt64(2 * Fixture.chunk))
            written.append((volume, try engine.writeObject(volume: volume, bytes: Fixture.bytes(size, seed: rng.next()))))
        }
        for _ in 0..<(written.count / 5) {
            let victim = written.remove(at: Int(rng.next() % UInt64(written.count)))
            try engine.deleteObject(volume: victim.volume, id: victim.id)
        }
        let deleted = volumes[Int(rng.next() % UInt64(volumes.count))]
        try engine.deleteVolume(id: deleted)
        for volume in volumes where rng.next() % 2 == 0 { engine.closeVolume(volume) }
        try Self.expectIndexMatchesScan(engine, "seed \(seed) before the change")

        let victimDevice = engine.map.devices[Int(rng.next() % UInt64(engine.map.devices.count))].id
        let (changes, adding): ([MapChange], [DeviceSpec]) = switch rng.next() % 3 {
        case 0: ([], Fixture.devices(hosts: 7..<8))
        case 1: ([.setState(victimDevice, .out)], [])
        default: ([.reweight(victimDevice, 0)], [])
        }
        let report = try engine.plan(changes, adding: adding)
        let movement = try MovementPlan(from: engine.map, to: engine.map.nextEpoch(try engine.deviceChanges(adding, in: engine.map) + changes))
        var expectedBytes: Int64 = 0
        for entry in engine.classes() {
            let oracle = try Self.oracleBytes(engine, pool: entry.poolID, pgs: movement.moves(pool: entry.poolID).map(\.pg))
            let predicted = report.classes.first { $0.name == entry.storageClass.name }?.movedBytes
            #expect(predicted == oracle, "seed \(seed): plan for \(entry.storageClass.name)")
            expectedBytes += oracle
        }
        try engine.apply(adding: adding, changes: changes)
        let moved = engine.move()
        #expect(moved.failures.isEmpty, "seed \(seed): \(moved.failures)")
        #expect(moved.remaining == 0)
        #expect(moved.bytes == expectedBytes, "seed \(seed): moved \(moved.bytes), the scan says \(expectedBytes)")
        #expect(moved.positions == report.classes.reduce(0) { $0 + $1.movedPositions })
        try Self.expectIndexMatchesScan(engine, "seed \(seed) after the move")
        for (volume, id) in written where volume != deleted {
            #expect(throws: Never.self, "seed \(seed): \(id)") { _ = try engine.readObject(volume: volume, id: id) }
        }
    }

    /// A crash loses the index changes not yet committed; the volumes open then are
    /// reconciled at start, so the next movement still finds every object.
    @Test func aCrashLosesNoIndexEntry() throws {
        var written: [(volume: String, id: ObjectID, seed: UInt64, size: Int)] = []
        do {
            // A window longer than the test: nothing is committed before the "crash".
            let engine = try Fixture.engine(dir) { $0.objectIndexWindowMs = 600_000 }
            for c in Fixture.classes {
                let volume = try engine.createVolume(name: "pvc-\(c.name)", className: c.name, capacityBytes: 8 << 20).id
                for i in 0..<8 {
                    let seed = UInt64(written.count), size = 3000 * i + 1
                    written.append((volume, try engine.writeObject(volume: volume, bytes: Fixture.bytes(size, seed: seed)), seed, size))
                }
            }
            #expect(engine.index.pendingCount == written.count)
        }  // dropped without closing a volume or flushing: as a crash leaves it
        let engine = try Engine(configuration: EngineConfiguration.testing(dir.path + "/state"))
        try Self.expectIndexMatchesScan(engine, "after the restart")
        try engine.addDevices(Fixture.devices(hosts: 7..<8))
        let moved = engine.move()
        #expect(moved.failures.isEmpty && moved.remaining == 0, "\(moved.failures)")
        #expect(engine.objects.device("h7-d0")!.usedBytes + engine.objects.device("h7-d1")!.usedBytes > 0)
        for (volume, id, seed, size) in written {
            let result = try engine.readObject(volume: volume, id: id)
            expectSame(result.bytes, Fixture.bytes(size, seed: seed))
            #expect(!result.isDegraded, "\(result.problems)")
        }
    }

    /// With namespaces in PostgreSQL: a node (another engine on the same database) writes
    /// and dies before its index changes commit; once its lease runs out, the controller's
    /// mover reconciles the volume from what the node shipped before it moves anything, so
    /// every object moves and reads back whole.
    @Test(.enabled(if: TestMetadata.postgres, "needs BERTH_TEST_METADATA=postgres"))
    func aDeadNodesVolumeIsReconciledBeforeItsObjectsMove() throws {
        let controller = try Fixture.engine(dir)
        let volume = try controller.createVolume(name: "pvc-dead", className: "replicated-3", capacityBytes: 8 << 20).id
        var written: [(id: ObjectID, seed: UInt64)] = []
        do {
            let nodeDirectory = TemporaryDirectory("berth-node")
            var configuration = EngineConfiguration(stateDirectory: nodeDirectory.path + "/state")
            configuration.metadata = controller.configuration.metadata
            configuration.role = .node
            configuration.nodeName = "dying-node"
            configuration.leaseTTL = .seconds(1)
            configuration.objectIndexWindowMs = 600_000  // nothing committed before the "crash"
            let node = try Engine(configuration: configuration)
            for i in 0..<6 {
                written.append((try node.writeObject(volume: volume, bytes: Fixture.bytes(5000 + i, seed: UInt64(i))), UInt64(i)))
            }
            Thread.sleep(forTimeInterval: 1.0)  // its namespace shipped (0.5 s after the writes)
        }  // the node dies: no close, no index flush, no release
        Thread.sleep(forTimeInterval: 1.5)  // its lease runs out
        try controller.addDevices(Fixture.devices(hosts: 7..<8))
        let moved = controller.move()
        #expect(moved.failures.isEmpty && moved.remaining == 0, "\(moved.failures)")
        #expect(try controller.database.volumesInUse().isEmpty)
        for (id, seed) in written {
            let result = try controller.readObject(volume: volume, id: id)
            expectSame(result.bytes, Fixture.bytes(5000 + Int(seed), seed: seed))
            #expect(!result.isDegraded, "\(result.problems)")
        }
    }

    /// Start-up reads no volume that was closed cleanly: their databases could be garbage
    /// and the engine would still start, with their usage from the cluster database.
    @Test func startReadsOnlyTheVolumesInUse() throws {
        var closed: [String] = [], open = ""
        var dataBytes: [String: Int64] = [:]
        do {
            let engine = try Fixture.engine(dir)
            for i in 0..<12 {
                let c = Fixture.classes[i % 3]
                let volume = try engine.createVolume(name: "v\(i)", className: c.name, capacityBytes: 8 << 20).id
                guard i < 4 else { continue }
                _ = try engine.writeObject(volume: volume, bytes: Fixture.bytes(10_000 + i, seed: UInt64(i)))
                dataBytes[c.name, default: 0] += Int64(10_000 + i)
                if i < 3 { engine.closeVolume(volume); closed.append(volume) } else { open = volume }
            }
        }
        let volumes = dir.path + "/state/volumes/"
        for volume in closed {
            try FileManager.default.moveItem(atPath: volumes + volume + ".sqlite", toPath: volumes + volume + ".saved")
            try Data("not a database".utf8).write(to: URL(fileURLWithPath: volumes + volume + ".sqlite"))
        }
        let engine = try Engine(configuration: EngineConfiguration.testing(dir.path + "/state"))
        let report = try engine.capacity()
        for c in Fixture.classes {
            #expect(report.classes.first { $0.name == c.name }?.dataBytes == dataBytes[c.name], "\(c.name)")
        }
        #expect(try engine.database.volumesInUse().isEmpty)
        #expect(try engine.objectIDs(volume: open).count == 1)
        for volume in closed {
            try FileManager.default.removeItem(atPath: volumes + volume + ".sqlite")
            try FileManager.default.moveItem(atPath: volumes + volume + ".saved", toPath: volumes + volume + ".sqlite")
        }
    }
}
