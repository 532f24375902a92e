import Foundation
import TestEngines
import Metadata
import Storage
import Testing
@testable import Engine

/// Snapshots and clones in the engine: shared objects counted once by capacity, kept while
/// anyone holds them, and every rule a restart must keep.
@Suite struct SnapshotEngineTests {
    let dir = TemporaryDirectory("berth-snapshots")

    func shards(_ engine: Engine) throws -> Int {
        try engine.objects.devices.reduce(0) { $0 + (try $1.allShards().count) }
    }

    func figures(_ engine: Engine, _ className: String) throws -> (used: Int64, data: Int64, provisioned: Int64) {
        let c = try #require(try engine.capacity().classes.first { $0.name == className })
        return (c.usedBytes, c.dataBytes, c.provisionedBytes)
    }

    @Test func sharedObjectsAreCountedOnceAndKeptWhileAnyoneHoldsThem() throws {
        let engine = try Fixture.engine(dir)
        let volume = try engine.createVolume(name: "v", className: "replicated-3", capacityBytes: 8 << 20)
        var written: [ObjectID: [UInt8]] = [:]
        for i in 0..<6 {
            let bytes = Fixture.bytes(50_000 + i, seed: UInt64(i))
            written[try engine.writeObject(volume: volume.id, bytes: bytes)] = bytes
        }
        let before = try figures(engine, "replicated-3")
        #expect(before.data == written.values.reduce(0) { $0 + Int64($1.count) })
        #expect(before.provisioned == 8 << 20)
        let shardsBefore = try shards(engine)
        #expect(shardsBefore == 6 * 3)

        let snapshot = try engine.createSnapshot(name: "s", sourceVolumeID: volume.id)
        #expect(snapshot.kind == .snapshot && snapshot.state == .available && snapshot.capacityBytes == 8 << 20)
        #expect(try engine.createSnapshot(name: "s", sourceVolumeID: volume.id).id == snapshot.id)
        let other = try engine.createVolume(name: "w", className: "replicated-3", capacityBytes: 8 << 20)
        #expect(throws: EngineError.self) { try engine.createSnapshot(name: "s", sourceVolumeID: other.id) }
        #expect(try engine.volume(id: snapshot.id) == nil, "a snapshot is not a volume")
        #expect(!(try engine.volumes().contains { $0.id == snapshot.id }))
        #expect(throws: EngineError.self) { try engine.objectIDs(volume: snapshot.id) }  // not writable or mountable

        let clone = try engine.createVolume(name: "c", className: "replicated-3", capacityBytes: 8 << 20, source: .snapshot(snapshot.id))
        #expect(clone.source == "snapshot:" + snapshot.id && clone.state == .available)
        #expect(Set(try engine.objectIDs(volume: clone.id)) == Set(written.keys))
        #expect(throws: EngineError.self) {
            try engine.createVolume(name: "small", className: "replicated-3", capacityBytes: 4 << 20, source: .snapshot(snapshot.id))
        }
        // Copies take no room: the same objects, counted once; the clone's size is provisioned.
        let shared = try figures(engine, "replicated-3")
        #expect(shared.used == before.used && shared.data == before.data)
        #expect(shared.provisioned == before.provisioned + (16 << 20))
        #expect(try shards(engine) == shardsBefore)

        // The source lets go of an object the others hold: its shards stay.
        let first = try #require(written.keys.sorted { $0.description < $1.description }.first)
        try engine.deleteObject(volume: volume.id, id: first)
        #expect(try shards(engine) == shardsBefore)
        expectSame(try engine.readObject(volume: clone.id, id: first).bytes, written[first]!)
        // The clone's own writes are its own.
        let mine = try engine.writeObject(volume: clone.id, bytes: Fixture.bytes(10_000, seed: 99))
        #expect(try shards(engine) == shardsBefore + 3)
        #expect(!(try engine.objectIDs(volume: volume.id).contains(mine)))

        // Delete the source, then the snapshot: the clone still reads every byte.
        try engine.deleteVolume(id: volume.id)
        try engine.deleteSnapshot(id: snapshot.id)
        try engine.deleteSnapshot(id: snapshot.id)  // idempotent
        #expect(try shards(engine) == shardsBefore + 3)
        for (id, bytes) in written { expectSame(try engine.readObject(volume: clone.id, id: id).bytes, bytes) }
        let alone = try figures(engine, "replicated-3")
        #expect(alone.data == before.data + 10_000)
        // Every object is indexed under a namespace that still exists (the mover finds it).
        for id in try engine.objectIDs(volume: clone.id) {
            #expect(try engine.database.indexedObject(id: id.description)?.volumeID == clone.id)
        }
        // The last holder lets go: the shards go.
        try engine.deleteObject(volume: clone.id, id: first)
        #expect(try shards(engine) == shardsBefore + 3 - 3)
        try engine.deleteVolume(id: clone.id)
        #expect(try shards(engine) == 0)
        let empty = try figures(engine, "replicated-3")
        #expect(empty.used == 0 && empty.data == 0)
    }

    @Test func aCloneIntoAnotherClassReadsAtOnceAndCopiesItsDataIntoItsOwnPool() throws {
        let engine = try Fixture.engine(dir)
        let volume = try engine.createVolume(name: "v", className: "replicated-3", capacityBytes: 8 << 20)
        var written: [ObjectID: [UInt8]] = [:]
        for i in 0..<5 {
            let bytes = Fixture.bytes(40_000 + 7 * i, seed: UInt64(100 + i))
            written[try engine.writeObject(volume: volume.id, bytes: bytes)] = bytes
        }
        let snapshot = try engine.createSnapshot(name: "s", sourceVolumeID: volume.id)
        let clone = try engine.createVolume(name: "c", className: "ec-4-2", capacityBytes: 8 << 20, source: .snapshot(snapshot.id))
        // Usable at once: its objects read from the source's pool.
        for (id, bytes) in written { expectSame(try engine.readObject(volume: clone.id, id: id).bytes, bytes) }
        #expect(try engine.volumeSummary(id: clone.id).copyingObjects == 5)
        #expect(try engine.database.cloneCopies() == [clone.id])
        #expect(try shards(engine) == 5 * 3)

        // Copied in steps under the budget, until nothing of another pool is left.
        var rounds = 0
        while engine.copyClones(maxBytes: 60_000).pending { rounds += 1 }
        #expect(rounds >= 2, "copied in several steps")
        #expect(try engine.database.cloneCopies().isEmpty)
        #expect(try engine.volumeSummary(id: clone.id).copyingObjects == 0)
        let ecPool = try engine.pool(ofVolume: clone.id)
        let rows = try engine.temporaryVolumeDatabase(clone.id).objects()
        #expect(rows.count == 5 && rows.allSatisfy { $0.poolID == Int64(ecPool) && $0.state == .live })
        let copies = try Set(rows.map { try engine.readObject(volume: clone.id, id: try #require(ObjectID($0.id))).bytes })
        #expect(copies == Set(written.values))
        #expect(try shards(engine) == 5 * 3 + 5 * 6, "the source's copies stay while it and the snapshot hold them")

        // The source and its snapshot go: only the clone's own copies are left.
        try engine.deleteVolume(id: volume.id)
        try engine.deleteSnapshot(id: snapshot.id)
        #expect(try shards(engine) == 5 * 6)
        #expect(try Set(rows.map { try engine.readObject(volume: clone.id, id: try #require(ObjectID($0.id))).bytes }) == Set(written.values))
        try engine.deleteVolume(id: clone.id)
        #expect(try shards(engine) == 0)
    }

    /// A crash after a volume let go of a shared object in the cluster database (its last
    /// holder row gone) but before its own row went: start-up finishes the let-go and must
    /// still see that the snapshot holds the object.
    @Test func aLetGoInterruptedByACrashKeepsWhatASnapshotHolds() throws {
        var engine: Engine? = try Fixture.engine(dir)
        let volume = try engine!.createVolume(name: "v", className: "replicated-3", capacityBytes: 8 << 20)
        let bytes = Fixture.bytes(60_000, seed: 8)
        let object = try engine!.writeObject(volume: volume.id, bytes: bytes)
        let snapshot = try engine!.createSnapshot(name: "s", sourceVolumeID: volume.id)
        // The first half of `letGo`, then the "crash".
        let vdb = try engine!.volumeDatabase(volume.id)  // marks it in use, as a mount does
        try vdb.setState(object: object.description, .deleting)
        #expect(try engine!.database.release([object.description], holder: volume.id) == [object.description])
        engine = nil
        let restarted = try Engine(configuration: EngineConfiguration.testing(dir.path + "/state"))
        #expect(try restarted.objectIDs(volume: volume.id).isEmpty, "start-up finished the let-go")
        #expect(try shards(restarted) == 3, "the snapshot's object kept its shards")
        let clone = try restarted.createVolume(name: "c", className: "replicated-3", capacityBytes: 8 << 20, source: .snapshot(snapshot.id))
        expectSame(try restarted.readObject(volume: clone.id, id: object).bytes, bytes)
    }

    @Test func aRestartKeepsSnapshotsAndClearsHalfMadeCopies() throws {
        var engine: Engine? = try Fixture.engine(dir)
        let volume = try engine!.createVolume(name: "v", className: "ec-4-2", capacityBytes: 8 << 20)
        let object = try engine!.writeObject(volume: volume.id, bytes: Fixture.bytes(70_000, seed: 5))
        let snapshot = try engine!.createSnapshot(name: "s", sourceVolumeID: volume.id)
        // A copy a crash interrupted: its row says 'creating', its database may be whole.
        let halfMade = VolumeRecord(id: "vol-" + String(repeating: "ab", count: 16), name: "half", className: "ec-4-2", capacityBytes: 8 << 20,
                                    state: .creating, createdMs: 1, source: "snapshot:" + snapshot.id)
        try engine!.database.commit([.saveVolume(halfMade)])
        _ = try engine!.temporaryVolumeDatabase(snapshot.id).copy(to: dir.path + "/state/volumes/\(halfMade.id).sqlite")
        engine = nil
        let restarted = try Engine(configuration: EngineConfiguration.testing(dir.path + "/state"))
        #expect(try restarted.database.volume(id: halfMade.id) == nil)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/state/volumes/\(halfMade.id).sqlite"))
        #expect(try restarted.snapshot(id: snapshot.id)?.state == .available)
        // Its objects were the snapshot's: nothing was deleted with it.
        try restarted.deleteVolume(id: volume.id)
        let clone = try restarted.createVolume(name: "c", className: "ec-4-2", capacityBytes: 8 << 20, source: .snapshot(snapshot.id))
        expectSame(try restarted.readObject(volume: clone.id, id: object).bytes, Fixture.bytes(70_000, seed: 5))
    }
}
