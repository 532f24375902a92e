import Foundation
import Synchronization
import GRDB
import Placement
import Testing
@testable import Metadata

@Suite struct ClusterDatabaseTests {
    let directory: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-meta-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    func classRecord(_ name: String = "replicated-3", pool: Int64 = 1) -> StorageClassRecord {
        StorageClassRecord(name: name, poolID: pool, definition: "{}", createdMs: 1)
    }

    func volume(_ id: String, name: String, className: String = "replicated-3") -> VolumeRecord {
        VolumeRecord(id: id, name: name, className: className, capacityBytes: 1 << 30, state: .available, createdMs: 2)
    }

    @Test func fileDatabaseMigratesOnceAndKeepsData() throws {
        let path = directory + "/cluster.sqlite"
        do {
            let db = try ClusterDatabase(path: path)
            try db.commit([.saveClass(classRecord()), .saveVolume(volume("v1", name: "pvc-1"))])
        }
        let reopened = try ClusterDatabase(path: path)
        #expect(try reopened.volumes().map(\.name) == ["pvc-1"])
        let applied = try reopened.writer.read { try ClusterMigrations.migrator.appliedMigrations($0) }
        #expect(applied == ["v1-cluster", "v2-volume-class-index", "v3-object-index", "v4-device-agent", "v5-pg-recovery",
                            "v6-pg-recovery-generation", "v7-health-marks", "v8-snapshots", "v9-clone-copies", "v10-maintenance", "v11-sharing-holders"])
        let journal = try reopened.writer.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
        // Commits fsync the WAL (GRDB would leave NORMAL).
        let synchronous = try reopened.writer.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
        #expect(synchronous == 2)
    }

    /// The object index belongs to its volumes: an add for a volume that is gone is
    /// skipped, a deleted volume takes its index rows, usage and in-use mark along, and its
    /// commits leave the connection fsyncing again.
    @Test func objectIndexFollowsItsVolumes() throws {
        let db = try ClusterDatabase(path: directory + "/index.sqlite")
        try db.commit([.saveClass(classRecord()), .saveVolume(volume("v1", name: "a")), .saveVolume(volume("v2", name: "b"))])
        func object(_ n: Int, _ volume: String, pg: Int64) -> IndexedObject {
            IndexedObject(id: String(format: "%032x", n), poolID: 1, pg: pg, volumeID: volume, sizeBytes: 100, shardBytes: 140)
        }
        try db.markInUse(volumeID: "v1")
        try db.markInUse(volumeID: "nope")  // no such volume: nothing recorded
        try db.applyIndex([.add(object(1, "v1", pg: 3)), .add(object(2, "v1", pg: 3)), .add(object(3, "v2", pg: 4)),
                           .add(object(4, "gone", pg: 3)), .remove(id: String(format: "%032x", 2))])
        #expect(try db.indexedObjects(poolID: 1, pg: 3).map(\.id) == [String(format: "%032x", 1)])
        #expect(try db.positionBytes(poolID: 1) == [3: 140, 4: 140])
        #expect(try db.indexedObjectCount(poolID: 1, pgs: [3, 4]) == 2)
        #expect(try db.volumesInUse() == ["v1"])
        let synchronous = try db.writer.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") }
        #expect(synchronous == 2)
        try db.replaceIndex(volumeID: "v1", objects: [object(5, "v1", pg: 7)],
                            usage: VolumeUsageRecord(volumeID: "v1", storedBytes: 140, liveBytes: 100), keepInUse: false)
        #expect(try db.indexedObjects(poolID: 1, pg: 3).isEmpty)
        #expect(try db.volumesInUse().isEmpty)
        #expect(try db.usages() == [VolumeUsageRecord(volumeID: "v1", storedBytes: 140, liveBytes: 100)])
        try db.markInUse(volumeID: "v1")
        try db.commit([.deleteVolume(id: "v1")])
        #expect(try db.indexedObject(id: String(format: "%032x", 5)) == nil)
        #expect(try db.usages().isEmpty && db.volumesInUse().isEmpty)
        #expect(try db.indexedObjects(poolID: 1, pg: 4).map(\.volumeID) == ["v2"])
    }

    @Test func schemaHoldsTheInvariants() throws {
        let db = try ClusterDatabase()
        try db.commit([.saveClass(classRecord())])
        try db.commit([.saveVolume(volume("v1", name: "pvc-1"))])
        // Volume names are unique.
        #expect(throws: DatabaseError.self) { try db.commit([.saveVolume(volume("v2", name: "pvc-1"))]) }
        // A volume's class must exist.
        #expect(throws: DatabaseError.self) { try db.commit([.saveVolume(volume("v3", name: "pvc-3", className: "nope"))]) }
        // A class in use cannot go.
        #expect(throws: MetadataError.inUse("storage class \"replicated-3\" (volumes use it)")) {
            try db.commit([.deleteClass(name: "replicated-3")])
        }
        // Pool ids are unique and positive; capacities are not negative.
        #expect(throws: DatabaseError.self) { try db.commit([.saveClass(classRecord("other", pool: 1))]) }
        #expect(throws: DatabaseError.self) { try db.commit([.saveClass(classRecord("zero", pool: 0))]) }
        var negative = volume("v4", name: "pvc-4")
        negative.capacityBytes = -1
        #expect(throws: DatabaseError.self) { try db.commit([.saveVolume(negative)]) }
        #expect(throws: DatabaseError.self) {
            try db.commit([.saveDevice(DeviceRecord(id: "", path: "/x", capacityBytes: 1, host: "h", addedMs: 0))])
        }
    }

    /// A batch with a bad change leaves nothing of the batch behind.
    @Test func commitIsAllOrNothing() throws {
        let db = try ClusterDatabase()
        try db.commit([.saveClass(classRecord())])
        #expect(throws: (any Error).self) {
            try db.commit([.saveVolume(volume("ok", name: "fine")), .saveVolume(volume("bad", name: "x", className: "missing"))])
        }
        #expect(try db.volumes().isEmpty)
    }

    @Test func mapsAndLocations() throws {
        let db = try ClusterDatabase()
        #expect(try db.latestMap() == nil)
        let buckets = (0..<3).map { Bucket(id: "h\($0)", type: "host") }
        let devices = (0..<3).map { Device(id: DeviceID("h\($0)-d"), parent: "h\($0)", weight: 1) }
        let pool = Pool(id: 1, name: "replicated-3", rule: Rule(.replicated(copies: 3), failureDomain: "host"), pgCount: 8)
        let map = try ClusterMap.initial(buckets: buckets, devices: devices, pools: [pool])
        let table = try Placer(map: map).table(pool: 1)
        try db.commit([.saveClass(classRecord()), .insertMap(map), .setLocations(poolID: 1, table: table)])
        #expect(try db.latestMap() == map)
        #expect(try db.locations(poolID: 1).flatMap { $0 } == table.devices)
        // Epochs are unique.
        #expect(throws: DatabaseError.self) { try db.commit([.insertMap(map)]) }
        let next = try map.nextEpoch([.rebalance])
        try db.commit([.insertMap(next), .startMovement(MovementRecord(epoch: Int64(next.epoch), totalPositions: 1, totalBytes: 10, startedMs: 0))])
        #expect(try db.epochs() == [1, 2])
        // Switching a location checks where it was.
        let from = table[0].first!
        #expect(throws: MetadataError.self) {
            try db.switchLocation(poolID: 1, pg: 0, position: 0, from: "elsewhere", to: "h9", movedBytes: 0, epoch: 2)
        }
        try db.switchLocation(poolID: 1, pg: 0, position: 0, from: from, to: "h9", movedBytes: 10, epoch: 2)
        #expect(try db.locations(poolID: 1)[0][0] == "h9")
        #expect(try db.cleanups() == [CleanupRecord(poolID: 1, pg: 0, position: 0, device: from.rawValue)])
        #expect(try db.latestMovement()?.doneBytes == 10)
    }

    @Test func volumeObjects() throws {
        let db = try VolumeDatabase(path: directory + "/v1.sqlite", volumeID: "v1")
        let id = String(repeating: "a", count: 32)
        // Volume commits are NORMAL; durable ones switch to FULL and back.
        #expect(try db.synchronousMode() == 1)
        try db.beginObject(ObjectRecord(id: id, poolID: 1, pg: 3, sizeBytes: 100, state: .writing, createdMs: 0), settling: true)
        try db.syncNamespace()
        #expect(try db.synchronousMode() == 1)
        #expect(try db.objects(state: .writing).map(\.id) == [id])
        #expect(try db.settlingObjects().map(\.id) == [id])
        #expect(try db.objects(poolID: 1, pg: 3, states: [.live]).isEmpty)  // not live yet
        #expect(try db.objects(poolID: 1, pg: 3, states: [.live, .writing]).map(\.id) == [id])
        #expect(try db.objects(poolID: 1, pg: 2, states: [.live, .writing]).isEmpty)
        try db.makeCommitsDurable()
        #expect(try db.synchronousMode() == 1)
        try db.settle(object: id)
        #expect(try db.settlingObjects().isEmpty)
        #expect(throws: MetadataError.self) { try db.settle(object: id) }  // only a 'writing' object settles
        #expect(try db.objects(poolID: 1, pg: 3, states: [.live]).map(\.id) == [id])
        #expect(try db.objects(poolID: 1, pg: 3, states: [.writing]).isEmpty)
        #expect(try db.liveBytes() == 100)
        #expect(throws: MetadataError.notFound("object nope")) { try db.setState(object: "nope", .live) }
        #expect(throws: DatabaseError.self) {
            try db.beginObject(ObjectRecord(id: "short", poolID: 1, pg: 0, sizeBytes: 1, state: .writing, createdMs: 0))
        }
        try db.removeObject(id: id)
        #expect(try db.objectCount() == 0)
    }
}

/// Two processes may open one new database file at the same moment (two `berth-engine`
/// commands on one state directory, a daemon and an operator's tool). Each migrates it; a
/// migration one of them applied while the other was deciding what to apply must not fail
/// the other's open. Separate pools in one process race through SQLite just as processes do.
@Suite struct ConcurrentMigrationTests {
    func openAtOnce(_ count: Int, _ open: @escaping @Sendable (String) throws -> Void) -> [String] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-migrate-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let failures = Mutex<[String]>([])
        for round in 0..<count {
            let path = "\(directory)/\(round).sqlite"
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                do { try open(path) } catch { failures.withLock { $0.append("round \(round): \(error)") } }
            }
        }
        return failures.withLock { $0 }
    }

    @Test func aNewVolumeDatabaseOpenedByManyAtOnceOpensForAll() {
        let failures = openAtOnce(30) { path in _ = try VolumeDatabase(path: path, volumeID: "v") }
        #expect(failures.isEmpty, "\(failures.prefix(3))")
    }

    @Test func aNewClusterDatabaseOpenedByManyAtOnceOpensForAll() {
        let failures = openAtOnce(30) { path in _ = try ClusterDatabase(path: path) }
        #expect(failures.isEmpty, "\(failures.prefix(3))")
    }
}
