import Foundation
import GRDB
import MetadataPostgres
import TestSupport
import Testing
@testable import Metadata

/// Volumes' namespaces kept in PostgreSQL under leases (`NamespaceMirror`, a real server of
/// the test process's own): what one node shipped is what another opens, a node that lost
/// its lease lands nothing, a dead node's lease runs out, a restarted node keeps its copy.
@Suite struct NamespaceMirrorTests {
    /// A database with one class and one volume (the cluster store migrates it), and a
    /// namespace store per "node" (each with its own connections, as on separate hosts).
    struct Cluster {
        let settings: MetadataLocation.PostgresSettings
        let controller: PostgresClusterStore
        let directory: String

        init(volumes: [String] = ["v1"]) throws {
            guard case .postgres(let settings) = try MetadataLocation.parse(try TestPostgres.database()) else { fatalError() }
            self.settings = settings
            controller = try PostgresClusterStore(settings: settings)
            try controller.commit([.saveClass(StorageClassRecord(name: "c", poolID: 1, definition: "{}", createdMs: 1))]
                + volumes.map { .saveVolume(VolumeRecord(id: $0, name: "name-\($0)", className: "c", capacityBytes: 1 << 30, state: .available, createdMs: 2)) })
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-mirror-\(UUID().uuidString)").path
            for node in ["a", "b"] { try FileManager.default.createDirectory(atPath: directory + "/" + node, withIntermediateDirectories: true) }
        }

        func store() throws -> PostgresNamespaceStore { try PostgresNamespaceStore(settings: settings) }

        /// The volume's database on `node`, mirrored under a lease held by that node.
        func open(_ node: String, _ volume: String = "v1", store: PostgresNamespaceStore? = nil, ttl: Duration = .seconds(30),
                  shipDelay: Duration = .milliseconds(50), acquireWait: Duration = .milliseconds(300)) throws -> VolumeDatabase {
            let mirror = NamespaceMirror.Settings(store: try store ?? self.store(), holder: node, ttl: ttl, shipDelay: shipDelay, acquireWait: acquireWait)
            return try VolumeDatabase(path: "\(directory)/\(node)/\(volume).sqlite", volumeID: volume, batchWindow: .milliseconds(5), mirror: mirror)
        }
    }

    static func n(_ s: String) -> [UInt8] { Array(s.utf8) }

    /// Every mirrored row of the local database, by table, in key order.
    static func dump(_ db: VolumeDatabase) throws -> [NamespaceTable: [NamespaceRow]] {
        try db.commitNamespaceChanges()
        return try db.writer.read { d in
            var rows: [NamespaceTable: [NamespaceRow]] = [:]
            for table in NamespaceTable.allCases {
                rows[table] = try Row.fetchAll(d, sql: "SELECT \(table.columns.map(\.name).joined(separator: ", ")) FROM \(table.sqliteName) ORDER BY \(table.keyColumns.map(\.name).joined(separator: ", "))")
                    .map { row in table.columns.indices.map { NamespaceValue(row[$0] as DatabaseValue) } }
            }
            return rows
        }
    }

    /// Random namespace changes of every kind the filesystem makes: files, directories,
    /// symlinks, hard links, renames (over others too), unlinks, rmdirs, xattrs, attributes,
    /// data slices with their objects, truncations.
    struct Workload {
        var rng: SeededRandom
        var names: [(parent: Int64, name: String, directory: Bool)] = []
        var now: Int64 = 10
        var objects = 0

        mutating func step(_ db: VolumeDatabase) throws {
            now += 1
            let directories = [Int64(1)] + names.filter(\.directory).compactMap { try? db.lookup(parent: $0.parent, name: NamespaceMirrorTests.n($0.name)).ino }
            let parent = directories[Int(rng.next() % UInt64(directories.count))]
            let name = "e\(rng.next() % 40)"
            switch rng.next() % 10 {
            case 0, 1:
                if (try? db.create(parent: parent, name: n(name), kind: InodeRecord.regular, mode: 0o644, uid: 1, gid: 2, nowNs: now)) != nil {
                    names.append((parent, name, false))
                }
            case 2:
                if (try? db.create(parent: parent, name: n(name), kind: InodeRecord.directory, mode: 0o755, uid: 1, gid: 2, nowNs: now)) != nil {
                    names.append((parent, name, true))
                }
            case 3:
                if (try? db.create(parent: parent, name: n(name), kind: InodeRecord.symlink, mode: 0o777, uid: 1, gid: 2,
                                   target: n("target-\(now)"), nowNs: now)) != nil { names.append((parent, name, false)) }
            default:
                guard !names.isEmpty else { return }
                let pick = Int(rng.next() % UInt64(names.count))
                let entry = names[pick]
                guard let inode = try? db.lookup(parent: entry.parent, name: n(entry.name)) else { names.remove(at: pick); return }
                switch rng.next() % 7 {
                case 0:
                    if (try? db.rename(parent: entry.parent, name: n(entry.name), newParent: parent, newName: n(name), flags: 0, nowNs: now)) != nil {
                        names.remove(at: pick)
                        names.removeAll { $0.parent == parent && $0.name == name }
                        names.append((parent, name, entry.directory))
                    }
                case 1:
                    if entry.directory { if (try? db.rmdir(parent: entry.parent, name: n(entry.name), nowNs: now)) != nil { names.remove(at: pick) } }
                    else if (try? db.unlink(parent: entry.parent, name: n(entry.name), nowNs: now, deleteIfUnused: { _ in true })) != nil { names.remove(at: pick) }
                case 2:
                    try? db.setXattr(ino: inode.ino, name: n("user.k\(rng.next() % 3)"), value: n("value-\(now)"), flags: 0, nowNs: now)
                case 3:
                    if !entry.directory, inode.kind == InodeRecord.regular,
                       (try? db.link(ino: inode.ino, newParent: parent, newName: n(name), nowNs: now)) != nil { names.append((parent, name, false)) }
                case 4:
                    _ = try? db.setattr(ino: inode.ino, mode: Int64(rng.next() % 0o777), chunkSize: 1 << 20, nowNs: now)
                case 5 where inode.kind == InodeRecord.regular:
                    objects += 1
                    let id = String(format: "%032x", objects)
                    try db.beginObject(ObjectRecord(id: id, poolID: 1, pg: Int64(objects % 8), sizeBytes: 4096, state: .writing, createdMs: now))
                    let chunk = Int64(rng.next() % 3)
                    _ = try db.commitWrites([.init(ino: inode.ino, size: (chunk << 20) + 4096, mtimeNs: now)],
                                            slices: [SliceRecord(ino: inode.ino, chunk: chunk, pos: 0, len: 4096, object: id)], objects: [id])
                case 6 where inode.kind == InodeRecord.regular:
                    _ = try? db.setattr(ino: inode.ino, size: Int64(rng.next() % 3) << 19, chunkSize: 1 << 20, nowNs: now)
                default:
                    break
                }
            }
        }

        func n(_ s: String) -> [UInt8] { NamespaceMirrorTests.n(s) }
    }

    /// After every fsync the store's copy is exactly the local one, and another node opening
    /// the volume gets exactly what the last fsync shipped.
    @Test func whatOneNodeShippedIsWhatAnotherOpens() throws {
        let cluster = try Cluster()
        let store = try cluster.store()
        let a = try cluster.open("a", store: store, shipDelay: .seconds(3600))
        try a.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: 1)
        var work = Workload(rng: SeededRandom(seed: 29))
        for round in 0..<12 {
            for _ in 0..<60 { try work.step(a) }
            try a.syncNamespace()
            let image = try store.load(volumeID: "v1")
            #expect(image.rows == (try Self.dump(a)), "round \(round)")
            #expect(image.version == Int64(round + 1))
        }
        let shipped = try Self.dump(a)
        // Changes after the last fsync, never shipped: not part of what B gets.
        _ = try a.create(parent: 1, name: Self.n("late"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 99)
        #expect(throws: NamespaceLeaseHeld.self) { _ = try cluster.open("b") }
        #expect(try store.breakLease(volumeID: "v1") == "a")
        let b = try cluster.open("b")
        #expect(b.mirror?.restored == true && b.mirror?.writtenElsewhere == true)
        #expect(try Self.dump(b) == shipped)
        #expect(throws: FSError.noEntry) { _ = try b.lookup(parent: 1, name: Self.n("late")) }
        // B goes on from there, and its changes ship under its own generation.
        for _ in 0..<80 { try work.step(b) }
        try b.syncNamespace()
        #expect(try store.load(volumeID: "v1").rows == (try Self.dump(b)))
        #expect(try store.lease(volumeID: "v1")?.holder == "b")
    }

    /// Fencing: once another node took the lease, nothing of the old holder's lands — its
    /// fsync fails, every later change fails with EIO, and the store never shows them.
    @Test func aNodeThatLostItsLeaseLandsNothing() throws {
        let cluster = try Cluster()
        let a = try cluster.open("a")
        try a.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: 1)
        _ = try a.create(parent: 1, name: Self.n("before"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        try a.syncNamespace()
        let admin = try cluster.store()
        #expect(try admin.breakLease(volumeID: "v1") == "a")
        let b = try cluster.open("b")
        _ = try b.lookup(parent: 1, name: Self.n("before"))
        // A does not know yet: its next change may commit locally, but its fsync is refused…
        _ = try? a.create(parent: 1, name: Self.n("after"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 3)
        #expect(throws: FSError.io) { try a.syncNamespace() }
        #expect(a.mirror?.isFenced == true)
        // … and from then on every change fails.
        #expect(throws: FSError.io) { _ = try a.create(parent: 1, name: Self.n("later"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 4) }
        _ = try b.create(parent: 1, name: Self.n("b-file"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 5)
        try b.syncNamespace()
        let names = Set((try admin.load(volumeID: "v1").rows[.dentry] ?? []).map { $0[1] })
        #expect(names == [.blob(Data("before".utf8)), .blob(Data("b-file".utf8))])
        // A's timed shipments stay refused too.
        Thread.sleep(forTimeInterval: 0.3)
        #expect(Set((try admin.load(volumeID: "v1").rows[.dentry] ?? []).map { $0[1] }) == names)
    }

    /// A node that died stops renewing: its lease runs out, and another node mounts the
    /// volume after waiting at most that long, with everything the dead node fsynced.
    @Test func aDeadNodesLeaseRunsOut() throws {
        let cluster = try Cluster()
        let admin = try cluster.store()
        var a: VolumeDatabase? = try cluster.open("a", ttl: .seconds(1))
        try a!.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: 1)
        _ = try a!.create(parent: 1, name: Self.n("kept"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        try a!.syncNamespace()
        // Alive, it renews: the lease outlives its first term.
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try admin.lease(volumeID: "v1")?.remainingSeconds ?? 0 > 0)
        let generation = a!.mirror!.lease!.generation
        a = nil  // "killed": no release, no more renewals
        let started = ContinuousClock.now
        let b = try cluster.open("b", acquireWait: .seconds(10))
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(b.mirror?.lease?.generation == generation + 1)
        _ = try b.lookup(parent: 1, name: Self.n("kept"))
    }

    /// A node restarted (its process killed) takes its own lease back at once and keeps
    /// its local copy, changes not shipped yet included, which it then ships.
    @Test func aRestartedNodeKeepsItsCopyAndShipsTheRest() throws {
        let cluster = try Cluster()
        let admin = try cluster.store()
        var a: VolumeDatabase? = try cluster.open("a", shipDelay: .seconds(3600))
        try a!.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: 1)
        _ = try a!.create(parent: 1, name: Self.n("synced"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        try a!.syncNamespace()
        _ = try a!.create(parent: 1, name: Self.n("unsynced"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 3)
        try a!.commitNamespaceChanges()
        a = nil
        let again = try cluster.open("a", acquireWait: .zero)
        #expect(again.mirror?.restored == false)
        _ = try again.lookup(parent: 1, name: Self.n("unsynced"))
        try again.syncNamespace()
        #expect(try admin.load(volumeID: "v1").rows == (try Self.dump(again)))
    }

    /// A node whose local copy is older than what another node shipped since gets the
    /// store's copy, and knows that its own leftovers (the write journal) must not be replayed.
    @Test func aStaleLocalCopyIsReplaced() throws {
        let cluster = try Cluster()
        let a = try cluster.open("a")
        try a.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: 1)
        _ = try a.create(parent: 1, name: Self.n("from-a"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        try a.closeMirror()
        let b = try cluster.open("b")
        _ = try b.create(parent: 1, name: Self.n("from-b"), kind: InodeRecord.directory, mode: 0o755, uid: 0, gid: 0, nowNs: 3)
        _ = try b.unlink(parent: 1, name: Self.n("from-a"), nowNs: 4, deleteIfUnused: { _ in true })
        try b.closeMirror()
        let a2 = try cluster.open("a")
        #expect(a2.mirror?.restored == true && a2.mirror?.writtenElsewhere == true)
        #expect(try Self.dump(a2) == (try Self.dump(b)))
        #expect(throws: FSError.noEntry) { _ = try a2.lookup(parent: 1, name: Self.n("from-a")) }
        // A new inode number on A does not meet B's.
        let made = try a2.create(parent: 1, name: Self.n("new"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 5)
        #expect(made.ino > (try b.lookup(parent: 1, name: Self.n("from-b")).ino))
    }

    /// A copy of a mirrored volume (a snapshot's or clone's start) is a new namespace: its
    /// first mount under its own lease ships it whole, never takes the store's empty copy.
    @Test func aCopyOfAMirroredVolumeKeepsItsFiles() throws {
        let cluster = try Cluster(volumes: ["v1", "v2"])
        let a = try cluster.open("a")
        try a.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: 1)
        _ = try a.create(parent: 1, name: Self.n("f"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
        try a.syncNamespace()
        _ = try a.copy(to: "\(cluster.directory)/a/v2.sqlite")
        let copy = try cluster.open("a", "v2")
        #expect(copy.mirror?.restored == false)
        _ = try copy.lookup(parent: 1, name: Self.n("f"))
        try copy.syncNamespace()
        #expect(try cluster.store().load(volumeID: "v2").rows == (try Self.dump(copy)))
    }

    /// Deleting the volume deletes its namespace and lease with it.
    @Test func aDeletedVolumeTakesItsNamespaceAlong() throws {
        let cluster = try Cluster(volumes: ["v1", "v2"])
        let admin = try cluster.store()
        for volume in ["v1", "v2"] {
            let db = try cluster.open("a", volume)
            try db.ensureRoot(uid: 0, gid: 0, mode: 0o755, nowNs: 1)
            _ = try db.create(parent: 1, name: Self.n("f"), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0, nowNs: 2)
            try db.closeMirror()
        }
        try cluster.controller.commit([.deleteVolume(id: "v1")])
        #expect(try admin.load(volumeID: "v1") == NamespaceImage(version: 0, rows: Dictionary(uniqueKeysWithValues: NamespaceTable.allCases.map { ($0, []) })))
        #expect(try admin.lease(volumeID: "v1") == nil)
        #expect(try admin.load(volumeID: "v2").rows[.dentry]?.count == 1)
    }
}
