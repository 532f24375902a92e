import Engine
import Foundation
import TestEngines
import Metadata
import StorageClasses
import Testing
@testable import FileSystem

/// A clone into another class, mounted while its data is copied into its own pool: reads
/// are right before, during and after, including a read whose slices were fetched before
/// the copy swapped the object and whose old object is gone since.
@Suite struct CloneCopyTests {
    @Test func aReadThatKnewTheCopiedObjectReadsItsCopy() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-clone-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let engine = try Engine(configuration: EngineConfiguration.testing(directory))
        try engine.addDevices((0..<7).flatMap { h in (0..<2).map { DeviceSpec(id: "h\(h)-d\($0)", host: "h\(h)", capacityBytes: 256 << 20) } })
        try engine.applyClasses([
            StorageClass(name: "replicated-3", redundancy: .replicated(copies: 3), chunkSizeBytes: 64 << 10, pgCount: 32),
            StorageClass(name: "ec-4-2", redundancy: .erasure(dataShards: 4, parityShards: 2), chunkSizeBytes: 64 << 10, pgCount: 32),
        ])
        let source = try engine.createVolume(name: "src", className: "replicated-3", capacityBytes: 64 << 20)
        let fs = try VolumeFileSystem(engine: engine, volume: source.id)
        let ino = try fs.create(parent: 1, name: Array("data".utf8), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0).ino
        let bytes = pattern(300_000, seed: 11)
        _ = try bytes.withUnsafeBytes { buffer throws(FSError) in try fs.write(ino, offset: 0, bytes: buffer) }
        try fs.fsync(ino)
        fs.flushAll()

        let snapshot = try engine.createSnapshot(name: "s", sourceVolumeID: source.id)
        let clone = try engine.createVolume(name: "c", className: "ec-4-2", capacityBytes: 64 << 20, source: .snapshot(snapshot.id))
        let cloneFS = try VolumeFileSystem(engine: engine, volume: clone.id)
        let file = try cloneFS.lookup(parent: 1, name: Array("data".utf8)).ino
        #expect(try cloneFS.read(file, offset: 0, size: bytes.count) == bytes, "before the copy: from the source's pool")

        // The clone becomes the last holder of the old objects, then copies them: the old
        // ones go, while the mount still has their slices cached.
        try engine.deleteVolume(id: source.id)
        try engine.deleteSnapshot(id: snapshot.id)
        while engine.copyClones(maxBytes: 100_000).pending {}
        #expect(try engine.volumeSummary(id: clone.id).copyingObjects == 0)
        let stored = engine.objects.devices.reduce(0) { $0 + ((try? $1.allShards().count) ?? 0) }
        #expect(stored == (try engine.objectIDs(volume: clone.id).count) * 6, "only the clone's own EC shards are left")
        #expect(try cloneFS.read(file, offset: 0, size: bytes.count) == bytes, "after the copy: slices read again")
        // And the clone goes on as any volume: overwrite, read back.
        let patch = pattern(5_000, seed: 12)
        _ = try patch.withUnsafeBytes { buffer throws(FSError) in try cloneFS.write(file, offset: 70_000, bytes: buffer) }
        try cloneFS.fsync(file)
        var expected = bytes
        expected.replaceSubrange(70_000..<75_000, with: patch)
        #expect(try cloneFS.read(file, offset: 0, size: bytes.count) == expected)
        cloneFS.flushAll()
    }
}
