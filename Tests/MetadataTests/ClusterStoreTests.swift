import Foundation
import Metadata
import MetadataPostgres
import Placement
import Synchronization
import TestSupport
import Testing

/// The cluster store's operations and invariants, the same on both backends: SQLite
/// (`ClusterDatabase`) and a real PostgreSQL server (`PostgresClusterStore`, on a server of
/// the test process's own: `TestPostgres`).
@Suite struct ClusterStoreTests {
    enum Backend: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }
    }

    static func open(_ backend: Backend) throws -> any ClusterStore {
        switch backend {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-store-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            return try ClusterDatabase(path: directory + "/cluster.sqlite")
        case .postgres:
            guard case .postgres(let settings) = try MetadataLocation.parse(try TestPostgres.database()) else { fatalError() }
            return try PostgresClusterStore(settings: settings)
        }
    }

    static func classRecord(_ name: String = "replicated-3", pool: Int64 = 1) -> StorageClassRecord {
        StorageClassRecord(name: name, poolID: pool, definition: "{}", createdMs: 1)
    }

    static func volume(_ id: String, name: String, className: String = "replicated-3", kind: VolumeRecord.Kind = .volume,
                       state: VolumeRecord.State = .available, source: String? = nil) -> VolumeRecord {
        VolumeRecord(id: id, name: name, className: className, capacityBytes: 1 << 30, state: state, createdMs: 2, kind: kind, source: source)
    }

    static func object(_ n: Int, _ volume: String, pg: Int64, pool: Int64 = 1) -> IndexedObject {
        IndexedObject(id: String(format: "%032x", n), poolID: pool, pg: pg, volumeID: volume, sizeBytes: 100, shardBytes: 140)
    }

    static func id(_ n: Int) -> String { String(format: "%032x", n) }

    @Test(arguments: Backend.allCases)
    func classesDevicesMapsAndLocations(backend: Backend) throws {
        let db = try Self.open(backend)
        let device = DeviceRecord(id: "h1-d1", path: "/srv/d1", capacityBytes: 1 << 30, host: "h1", rack: "r1", zone: nil, addedMs: 3,
                                  agent: "10.0.0.1:7440")
        try db.commit([.saveClass(Self.classRecord()), .saveClass(Self.classRecord("ec-4-2", pool: 2)), .saveDevice(device)])
        #expect(try db.classes().map(\.name) == ["replicated-3", "ec-4-2"])
        #expect(try db.devices() == [device])
        // A save replaces.
        var moved = device
        moved.capacityBytes = 2 << 30
        moved.agent = nil
        try db.commit([.saveDevice(moved)])
        #expect(try db.devices() == [moved])

        let map = ClusterMap(epoch: 1, devices: [Device(id: "h1-d1", parent: "h1", weight: 1)])
        try db.commit([.insertMap(map)])
        #expect(try db.latestMap()?.epoch == 1)
        #expect(try db.epochs() == [1])
        // An epoch is written once.
        #expect(throws: (any Error).self) { try db.commit([.insertMap(map)]) }

        let table = PlacementTable(poolID: 1, width: 3, devices: (0..<12).map { DeviceID("d\($0 % 5)") })
        try db.commit([.setLocations(poolID: 1, table: table)])
        #expect(try db.locations(poolID: 1).count == 4)
        #expect(try db.locations(poolID: 1)[1] == ["d3", "d4", "d0"])
        try db.commit([.startMovement(MovementRecord(epoch: 1, totalPositions: 1, totalBytes: 10, startedMs: 5))])
        try db.switchLocation(poolID: 1, pg: 1, position: 0, from: "d3", to: "d9", movedBytes: 10, epoch: 1)
        #expect(try db.locations(poolID: 1)[1] == ["d9", "d4", "d0"])
        #expect(try db.cleanups() == [CleanupRecord(poolID: 1, pg: 1, position: 0, device: "d3")])
        #expect(try db.latestMovement()?.doneBytes == 10)
        // Not where the caller thinks: refused, nothing changed.
        #expect(throws: MetadataError.self) { try db.switchLocation(poolID: 1, pg: 1, position: 0, from: "d3", to: "d8", movedBytes: 1, epoch: 1) }
        #expect(try db.locations(poolID: 1)[1] == ["d9", "d4", "d0"])
        try db.recordProgress(epoch: 1, positions: 0, bytes: 5, finished: true)
        #expect(try db.latestMovement()?.finishedMs != nil)
        #expect(try db.latestMovement()?.doneBytes == 15)

        try db.commit([.setHealthMark(device: "h1-d1", state: "down"), .startMaintenance(device: "h1-d1", startedMs: 7, untilMs: nil)])
        #expect(try db.healthMarks() == ["h1-d1": "down"])
        #expect(try db.maintenance().map(\.device) == ["h1-d1"])
        #expect(try db.maintenance().first?.untilMs == nil)
        try db.commit([.setHealthMark(device: "h1-d1", state: nil), .endMaintenance(device: "h1-d1")])
        #expect(try db.healthMarks().isEmpty && db.maintenance().isEmpty)
        // CHECKs hold: an unknown health state is refused, and the whole commit with it.
        #expect(throws: (any Error).self) {
            try db.commit([.saveClass(Self.classRecord("other", pool: 3)), .setHealthMark(device: "h1-d1", state: "sideways")])
        }
        #expect(try db.classes().count == 2)
    }

    @Test(arguments: Backend.allCases)
    func volumesSnapshotsAndTheirRules(backend: Backend) throws {
        let db = try Self.open(backend)
        try db.commit([.saveClass(Self.classRecord())])
        try db.commit((1...5).map { .saveVolume(Self.volume("v\($0)", name: "pvc-\($0)")) })
        try db.commit([.saveVolume(Self.volume("s1", name: "pvc-1", kind: .snapshot, source: "volume:v1")),
                       .saveVolume(Self.volume("v6", name: "pvc-6", state: .creating))])
        #expect(try db.volumes().count == 7)
        #expect(try db.volumes(after: nil, limit: 2).map(\.id) == ["v1", "v2"])
        #expect(try db.volumes(after: "v2", limit: nil).map(\.id) == ["v3", "v4", "v5"])  // not the snapshot, not the one being made
        #expect(try db.volumeCounts() == ["replicated-3": 6])
        #expect(try db.volume(named: "pvc-1")?.id == "v1")
        #expect(try db.snapshot(named: "pvc-1")?.id == "s1")
        #expect(try db.snapshots(after: nil, limit: nil, sourceVolume: "v1").map(\.id) == ["s1"])
        #expect(try db.snapshots(after: nil, limit: nil, sourceVolume: "v2").isEmpty)
        #expect(try db.volume(id: "s1")?.source(.volume) == "v1")
        // Names are unique per kind; a class in use is not deleted; a volume's class exists.
        #expect(throws: (any Error).self) { try db.commit([.saveVolume(Self.volume("v7", name: "pvc-1"))]) }
        #expect(throws: MetadataError.inUse("storage class \"replicated-3\" (volumes use it)")) { try db.commit([.deleteClass(name: "replicated-3")]) }
        #expect(throws: (any Error).self) { try db.commit([.saveVolume(Self.volume("v8", name: "x", className: "nope"))]) }
        #expect(throws: (any Error).self) { try db.commit([.saveVolume(Self.volume("", name: "empty id"))]) }
        try db.commit([.deleteVolume(id: "v5")])
        #expect(try db.volume(id: "v5") == nil)
    }

    @Test(arguments: Backend.allCases)
    func theObjectIndexFollowsItsVolumes(backend: Backend) throws {
        let db = try Self.open(backend)
        try db.commit([.saveClass(Self.classRecord()), .saveVolume(Self.volume("v1", name: "a")), .saveVolume(Self.volume("v2", name: "b"))])
        try db.markInUse(volumeID: "v1")
        try db.markInUse(volumeID: "v1")
        try db.markInUse(volumeID: "nope")  // no such volume: nothing recorded
        try db.applyIndex([.add(Self.object(1, "v1", pg: 3)), .add(Self.object(2, "v1", pg: 3)), .add(Self.object(3, "v2", pg: 4)),
                           .add(Self.object(4, "gone", pg: 3)), .remove(id: Self.id(2)), .add(Self.object(2, "v2", pg: 5)),
                           .remove(id: Self.id(2))])
        #expect(try db.indexedObjects(poolID: 1, pg: 3).map(\.id) == [Self.id(1)])
        #expect(try db.indexedObject(id: Self.id(3))?.volumeID == "v2")
        #expect(try db.indexedObject(id: Self.id(2)) == nil)
        #expect(try db.positionBytes(poolID: 1) == [3: 140, 4: 140])
        #expect(try db.indexedObjectCount(poolID: 1, pgs: [3, 4]) == 2)
        #expect(try db.indexedObjectCount(poolID: 1, pgs: []) == 0)
        #expect(try db.poolHasObjects(poolID: 1) && !db.poolHasObjects(poolID: 2))
        #expect(try db.volumesInUse() == ["v1"])
        try db.replaceIndex(volumeID: "v1", objects: [Self.object(5, "v1", pg: 7)],
                            usage: VolumeUsageRecord(volumeID: "v1", storedBytes: 420, liveBytes: 100), keepInUse: false)
        #expect(try db.indexedObjects(poolID: 1, pg: 3).isEmpty)
        #expect(try db.indexedObjects(poolID: 1, pg: 7).map(\.id) == [Self.id(5)])
        #expect(try db.volumesInUse().isEmpty)
        #expect(try db.usages() == [VolumeUsageRecord(volumeID: "v1", storedBytes: 420, liveBytes: 100)])
        // A deleted volume takes its index rows and usage along.
        try db.commit([.deleteVolume(id: "v1")])
        #expect(try db.indexedObjects(poolID: 1, pg: 7).isEmpty)
        #expect(try db.usages().isEmpty)
        // Index ids are object ids: 32 hex digits.
        #expect(throws: (any Error).self) { try db.applyIndex([.add(IndexedObject(id: "short", poolID: 1, pg: 1, volumeID: "v2", sizeBytes: 1, shardBytes: 1))]) }
    }

    @Test(arguments: Backend.allCases)
    func sharedObjectsAreLetGoOfOnce(backend: Backend) throws {
        let db = try Self.open(backend)
        try db.commit([.saveClass(Self.classRecord()), .saveVolume(Self.volume("v1", name: "a")),
                       .saveVolume(Self.volume("s1", name: "a", kind: .snapshot, state: .creating, source: "volume:v1"))])
        try db.applyIndex([.add(Self.object(1, "v1", pg: 1)), .add(Self.object(2, "v1", pg: 1)), .add(Self.object(3, "v1", pg: 2))])
        var snapshot = Self.volume("s1", name: "a", kind: .snapshot, source: "volume:v1")
        try db.finishCopy(snapshot, sharing: [Self.id(1), Self.id(2)], with: "v1",
                          usage: VolumeUsageRecord(volumeID: "s1", storedBytes: 280, liveBytes: 200))
        #expect(try db.volume(id: "s1")?.state == .available)
        #expect(try db.sharingHolders() == ["v1", "s1"])
        // Only a copy still being made becomes available.
        snapshot.id = "s2"
        #expect(throws: MetadataError.self) { try db.finishCopy(snapshot, sharing: [], with: "v1", usage: VolumeUsageRecord(volumeID: "s2", storedBytes: 0, liveBytes: 0)) }
        // Shared objects count once: the snapshot has no usage of its own to correct.
        #expect(try db.sharedCorrection(poolID: 1) == (0, 0))
        // The volume lets go: the objects the snapshot holds stay, their index passes to it.
        #expect(try db.release([Self.id(1), Self.id(3)], holder: "v1") == [Self.id(1)])
        #expect(try db.release([Self.id(1), Self.id(3)], holder: "v1") == [Self.id(1)])  // again (after a crash): the same answer
        #expect(try db.indexedObject(id: Self.id(1))?.volumeID == "s1")
        // Deleting the volume passes the index of what the snapshot still shares to it.
        try db.deleteHolder(id: "v1")
        #expect(try db.indexedObject(id: Self.id(2))?.volumeID == "s1")
        #expect(try db.indexedObject(id: Self.id(3)) == nil)
        #expect(try db.release([Self.id(2)], holder: "s1") == [])

        try db.commit([.saveVolume(Self.volume("c1", name: "c", state: .creating, source: "snapshot:s1"))])
        try db.finishCopy(Self.volume("c1", name: "c", source: "snapshot:s1"), sharing: [], with: "s1",
                          usage: VolumeUsageRecord(volumeID: "c1", storedBytes: 0, liveBytes: 0), copyData: true)
        #expect(try db.cloneCopies() == ["c1"])
        try db.finishCloneCopy(volumeID: "c1")
        #expect(try db.cloneCopies().isEmpty)
    }

    /// Two holders letting go of the same object at once: exactly one of them keeps it
    /// from the other (the last one out deletes its shards) — on PostgreSQL by SERIALIZABLE
    /// transactions retried, on SQLite by its single writer.
    @Test(arguments: Backend.allCases)
    func concurrentLetGosLeaveExactlyOneDeleter(backend: Backend) throws {
        let db = try Self.open(backend)
        try db.commit([.saveClass(Self.classRecord())] + (1...4).map { .saveVolume(Self.volume("v\($0)", name: "n\($0)")) })
        for round in 0..<10 {
            let object = Self.id(1000 + round)
            try db.applyIndex([.add(Self.object(1000 + round, "v1", pg: 1))])
            for other in ["v2", "v3", "v4"] {
                try db.commit([.saveVolume(Self.volume("x\(round)\(other)", name: "x\(round)\(other)", state: .creating))])
                try db.finishCopy(Self.volume("x\(round)\(other)", name: "x\(round)\(other)"), sharing: [object], with: "v1",
                                  usage: VolumeUsageRecord(volumeID: "x\(round)\(other)", storedBytes: 0, liveBytes: 0))
            }
            let holders = ["v1"] + ["v2", "v3", "v4"].map { "x\(round)\($0)" }
            let deleters = Mutex(0)
            let failures = Mutex<[String]>([])
            let group = DispatchGroup()
            for holder in holders {
                group.enter()
                Thread {
                    do {
                        if try db.release([object], holder: holder).isEmpty { deleters.withLock { $0 += 1 } }
                    } catch { failures.withLock { $0.append("\(error)") } }
                    group.leave()
                }.start()
            }
            group.wait()
            #expect(failures.withLock { $0 }.isEmpty)
            #expect(deleters.withLock { $0 } == 1, "round \(round)")
        }
    }

    @Test(arguments: Backend.allCases)
    func recoveryGenerations(backend: Backend) throws {
        let db = try Self.open(backend)
        try db.markForRecovery(poolID: 1, pg: 4)
        try db.markForRecovery(poolID: 1, pg: 4)
        try db.markForRecovery(poolID: 2, pg: 0)
        let pending = try db.pgsNeedingRecovery()
        #expect(pending.map(\.pg) == [4, 0] && pending.map(\.generation) == [1, 0])
        #expect(try !db.clearRecovery(poolID: 1, pg: 4, generation: 0))  // marked again since
        #expect(try db.clearRecovery(poolID: 1, pg: 4, generation: 1))
        #expect(try db.clearRecovery(poolID: 2, pg: 0))
        #expect(try db.pgsNeedingRecovery().isEmpty)
    }

    /// The server restarted under the store: the call in flight may fail, cleanly; the
    /// next ones reconnect and see everything committed before.
    @Test func postgresRestartedTheStoreReconnects() throws {
        // A server of its own: the other tests' goes on serving them.
        let server = try TestPostgres.Server()
        defer { server.stop() }
        guard case .postgres(let settings) = try MetadataLocation.parse(try server.database()) else { return }
        let db = try PostgresClusterStore(settings: settings)
        try db.commit([.saveClass(Self.classRecord()), .saveVolume(Self.volume("v1", name: "a"))])
        try server.restart()
        var answered = false
        for _ in 0..<50 where !answered {
            answered = ((try? db.volume(id: "v1")) ?? nil) != nil
            if !answered { usleep(100_000) }
        }
        #expect(answered)
        try db.commit([.saveVolume(Self.volume("v2", name: "b"))])
        #expect(try db.volumes().map(\.id) == ["v1", "v2"])
    }

    /// One store (one daemon) per cluster state until controllers elect a leader: a second
    /// is refused, saying why, until the first goes.
    @Test func aSecondStoreOnTheSameDatabaseIsRefused() throws {
        let url = try TestPostgres.database()
        guard case .postgres(let settings) = try MetadataLocation.parse(url) else { return }
        var first: PostgresClusterStore? = try PostgresClusterStore(settings: settings)
        try first?.commit([.saveClass(Self.classRecord())])
        do {
            _ = try PostgresClusterStore(settings: settings)
            Issue.record("a second store opened beside the first")
        } catch {
            #expect("\(error)".contains("controller lock"), "\(error)")
        }
        first = nil
        let second = try PostgresClusterStore(settings: settings)
        #expect(try second.classes().map(\.name) == ["replicated-3"])
    }

    @Test func metadataURLs() throws {
        #expect(try MetadataLocation.parse("sqlite:///var/lib/berth/cluster.sqlite") == .sqlite(path: "/var/lib/berth/cluster.sqlite"))
        #expect(throws: MetadataLocation.Invalid.self) { try MetadataLocation.parse("sqlite://relative") }
        let pg = try MetadataLocation.parse("postgres://berth:s%40cret@db.example:6432/cluster?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        #expect(pg == .postgres(.init(host: "db.example", port: 6432, user: "berth", password: "s@cret", database: "cluster",
                                      sslMode: .verifyFull, sslRootCertificate: "/etc/ca.pem")))
        #expect(pg.description == "postgres://berth@db.example:6432/cluster?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        #expect(try MetadataLocation.parse("postgresql://u@h/d", environment: ["PGPASSWORD": "p"])
                == .postgres(.init(host: "h", user: "u", password: "p", database: "d", sslMode: .prefer)))
        // Decoded once: "%25" is a percent sign.
        guard case .postgres(let decoded) = try MetadataLocation.parse("postgres://u:100%25@h/d") else { Issue.record("not postgres"); return }
        #expect(decoded.password == "100%")
        // A message about a bad URL never shows its password.
        do { _ = try MetadataLocation.parse("postgres://u:secret@h/d?sslmode=maybe") } catch {
            #expect(!"\(error)".contains("secret") && "\(error)".contains("u:***@h"), "\(error)")
        }
        for bad in ["postgres://h/d", "postgres://u@h", "postgres://u@h/d?sslmode=maybe", "postgres://u@h/d?sslmode=verify-full",
                    "postgres://u@h/d?color=blue", "mysql://u@h/d", ""] {
            #expect(throws: MetadataLocation.Invalid.self, "\(bad)") { try MetadataLocation.parse(bad) }
        }
    }
}
