import Engine
import Foundation
import TestEngines
import Metadata
import Placement
import StorageClasses
@testable import Storage
import Synchronization
import Testing
@testable import FileSystem

/// Writing objects — shards fsynced on every device of the class, milliseconds to seconds —
/// happens without the filesystem's lock, so one file's fsync, truncation or compaction does
/// not stop every other operation of the volume (a stat, a lookup, a create, another file's
/// write). Each test pauses the object write (the object store's `afterPlacement` hook) and
/// checks that other operations finish meanwhile; with the lock held across the write they
/// would wait for the pause, and the test would time out on them instead of hanging.
@Suite(.serialized) struct LockScopeTests {
    static let chunk = 64 << 10

    /// A volume of `className` on a fresh engine (`hosts` × `devicesPerHost` directory
    /// devices, 7 × 2 unless told), mounted nowhere: the filesystem's operations are called
    /// directly. Only `className` is applied, so a class that needs fewer hosts can have them.
    final class Volume: @unchecked Sendable {
        let directory: String
        let engine: Engine
        let fs: VolumeFileSystem
        let volumeID: String

        init(_ className: String, hosts: Int = 7, devicesPerHost: Int = 2, deviceCapacity: Int64 = 256 << 20,
             volumeCapacity: Int64 = 64 << 20) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("berth-lock-\(UUID().uuidString)").path
            engine = try Engine(configuration: EngineConfiguration.testing(directory))
            try engine.addDevices((0..<hosts).flatMap { h in
                (0..<devicesPerHost).map { DeviceSpec(id: "h\(h)-d\($0)", host: "h\(h)", capacityBytes: deviceCapacity) }
            })
            try engine.applyClasses([
                StorageClass(name: "replicated-3", redundancy: .replicated(copies: 3), chunkSizeBytes: LockScopeTests.chunk, pgCount: 32),
                StorageClass(name: "ec-4-2", redundancy: .erasure(dataShards: 4, parityShards: 2), chunkSizeBytes: LockScopeTests.chunk, pgCount: 32),
                StorageClass(name: "remote-disk", redundancy: .single, chunkSizeBytes: LockScopeTests.chunk, pgCount: 32),
            ].filter { $0.name == className })
            let volume = try engine.createVolume(name: "pvc", className: className, capacityBytes: volumeCapacity)
            volumeID = volume.id
            fs = try VolumeFileSystem(engine: engine, volume: volume.id)
        }

        deinit {
            fs.flushAll()
            try? FileManager.default.removeItem(atPath: directory)
        }

        func file(_ name: String) throws -> Int64 {
            try fs.create(parent: 1, name: Array(name.utf8), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0).ino
        }

        func write(_ ino: Int64, at offset: Int64, _ bytes: [UInt8]) throws {
            _ = try bytes.withUnsafeBytes { buffer throws(FSError) in try fs.write(ino, offset: offset, bytes: buffer) }
        }

        /// Pauses the `nth` object write from now on, after its placement and before its shards.
        func pauseObjectWrite(_ nth: Int = 1) -> Pause {
            let pause = Pause()
            let seen = Mutex(0)
            engine.objects.afterPlacement.withLock { hook in
                hook = { _ in
                    guard seen.withLock({ $0 += 1; return $0 }) == nth else { return }
                    pause.reached.signal()
                    pause.resume.wait()
                }
            }
            return pause
        }

        /// Pauses the next delete of objects, before any shard is removed.
        func pauseObjectDelete() -> Pause {
            let pause = Pause()
            engine.objects.beforeDelete.withLock { hook in
                hook = { _ in
                    pause.reached.signal()
                    pause.resume.wait()
                }
            }
            return pause
        }

        func stopPausing() {
            engine.objects.afterPlacement.withLock { $0 = nil }
            engine.objects.beforeDelete.withLock { $0 = nil }
        }

        /// Shard files on the devices.
        func shardCount() -> Int {
            let devices = directory + "/devices"
            return (FileManager.default.subpaths(atPath: devices) ?? []).filter { $0.contains("/shards/") && !$0.hasSuffix("/") }
                .filter { var st = stat(); return stat(devices + "/" + $0, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG }.count
        }
    }

    final class Pause: Sendable {
        let reached = DispatchSemaphore(value: 0)
        let resume = DispatchSemaphore(value: 0)
    }

    /// Runs `body` on a thread of its own and tells whether it finished while the caller
    /// still holds back what it must not wait for (a paused write, a writer that never
    /// stops): the order of two events, not a duration. The deadline only turns a body that
    /// would wait forever (the bug) into a failure instead of a hung suite; a body that is
    /// merely slow on a loaded machine still passes.
    static func finishes(_ body: @escaping @Sendable () -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        Thread { body(); done.signal() }.start()
        return done.wait(timeout: .now() + hangDeadlineSeconds) == .success
    }

    /// How long a test waits before calling a wait a hang.
    static let hangDeadlineSeconds = 120.0

    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) ^ seed } }

    /// What every test does while an object write is paused: operations on other files and
    /// on the namespace, and a read of the file whose bytes are being written (it sees them).
    static func otherOperationsFinish(_ v: Volume, paused file: Int64, expecting content: [UInt8]) {
        let fs = v.fs
        let results = Mutex<[String]>([])
        let finished = finishes {
            func note(_ what: String, _ body: () throws -> Void) {
                do { try body() } catch { results.withLock { $0.append("\(what): \(error)") } }
            }
            note("lookup") { _ = try fs.lookup(parent: 1, name: Array("other".utf8)) }
            note("getattr") { _ = try fs.getattr(1) }
            note("create") { _ = try v.file("new-\(UUID().uuidString)") }
            note("write") { try v.write(try fs.lookup(parent: 1, name: Array("other".utf8)).ino, at: 0, [1, 2, 3]) }
            note("read") {
                let read = try fs.read(file, offset: 0, size: content.count)
                if read != content { results.withLock { $0.append("read: \(read.count) bytes, not the \(content.count) written") } }
            }
        }
        #expect(finished, "operations on other files waited for an object write of another")
        #expect(results.withLock { $0 }.isEmpty, "\(results.withLock { $0 })")
    }

    @Test(arguments: ["replicated-3", "ec-4-2", "remote-disk"])
    func anFsyncWritesWithoutTheLock(className: String) throws {
        let v = try Volume(className)
        let file = try v.file("f")
        _ = try v.file("other")
        // Less than a chunk: nothing goes to the background write-back before the fsync.
        let data = Self.bytes(Self.chunk - 1000, seed: 7)
        try v.write(file, at: 0, data)
        let pause = v.pauseObjectWrite()
        let synced = Mutex<Result<Void, FSError>?>(nil)
        let fs = v.fs
        Thread { synced.withLock { $0 = Result { () throws(FSError) in try fs.fsync(file) } } }.start()
        #expect(pause.reached.wait(timeout: .now() + 10) == .success, "the fsync wrote no object")
        Self.otherOperationsFinish(v, paused: file, expecting: data)
        v.stopPausing()
        pause.resume.signal()
        while synced.withLock({ $0 == nil }) { usleep(1_000) }
        #expect(throws: Never.self) { try synced.withLock { $0 }!.get() }
        #expect(try v.fs.read(file, offset: 0, size: data.count) == data)
    }

    /// A truncation commits the bytes pending before it cuts; bytes written while that commit
    /// writes its objects are committed too, then cut: the file ends at the new size.
    @Test func aTruncationWritesWithoutTheLockAndCutsWhatCameMeanwhile() throws {
        let v = try Volume("remote-disk")
        let file = try v.file("f")
        _ = try v.file("other")
        let data = Self.bytes(Self.chunk - 1000, seed: 3)  // no full chunk: nothing written back before
        try v.write(file, at: 0, data)
        let pause = v.pauseObjectWrite()
        let cut = Mutex<Result<Attributes, FSError>?>(nil)
        let fs = v.fs
        Thread { cut.withLock { $0 = Result { () throws(FSError) in try fs.setattr(file, size: 1000) } } }.start()
        #expect(pause.reached.wait(timeout: .now() + 10) == .success, "the truncation wrote no object")
        Self.otherOperationsFinish(v, paused: file, expecting: data)
        // Written while the truncation's commit is on its way: before the cut, so cut too.
        #expect(Self.finishes { try? v.write(file, at: Int64(2 * Self.chunk), [9, 9, 9]) })
        v.stopPausing()
        pause.resume.signal()
        while cut.withLock({ $0 == nil }) { usleep(1_000) }
        #expect(try cut.withLock { $0 }!.get().size == 1000)
        #expect(try v.fs.getattr(file).size == 1000)
        #expect(try v.fs.read(file, offset: 0, size: 5000) == Array(data[0..<1000]))
        _ = try v.fs.setattr(file, size: Int64(3 * Self.chunk))
        let grown = try v.fs.read(file, offset: 0, size: 3 * Self.chunk)
        #expect(grown.count == 3 * Self.chunk)
        #expect(Array(grown[0..<1000]) == Array(data[0..<1000]))
        #expect(grown[1000...].allSatisfy { $0 == 0 }, "bytes cut came back")
    }

    /// A truncation commits what writers added during its first, unlocked round in a second
    /// round that keeps the lock, so it ends even while a writer faster than the devices
    /// keeps writing (a log truncated under its appender); round after unlocked round, it
    /// would chase the writer for as long as it writes.
    @Test func aTruncationEndsWhileAWriterKeepsWriting() throws {
        let v = try Volume("replicated-3")
        let file = try v.file("log")
        let stop = Mutex(false)
        let writer = DispatchSemaphore(value: 0)
        let piece = Self.bytes(4096, seed: 9)
        Thread {
            // Small pieces at random offsets in 4 MiB: chunks seldom fill, so nothing throttles
            // the writer to the devices' pace (full chunks would wait for the bytes in flight).
            var random = SystemRandomNumberGenerator()
            while !stop.withLock({ $0 }) {
                try? v.write(file, at: Int64.random(in: 0..<(1024 - 1), using: &random) * 4096, piece)
            }
            writer.signal()
        }.start()
        usleep(200_000)
        let fs = v.fs
        #expect(Self.finishes { _ = try? fs.setattr(file, size: 0) }, "the truncation chased the writer")
        stop.withLock { $0 = true }
        writer.wait()
    }

    /// Compaction composes a crowded chunk and writes it without the lock. A truncation that
    /// takes the chunk's slices meanwhile wins: the compacted object is dropped (and
    /// deleted), not committed over the cut — the file grown again reads zeros.
    @Test(arguments: [false, true])
    func compactionWritesWithoutTheLockAndYieldsToACut(cut: Bool) throws {
        let v = try Volume("remote-disk")
        let file = try v.file("f")
        _ = try v.file("other")
        var model = [UInt8](repeating: 0, count: Self.chunk)
        // One slice per fsynced write: the last one crowds the chunk past the limit.
        let writes = VolumeFileSystem.compactAboveSlices + 1
        for i in 0..<(writes - 1) {
            let piece = Self.bytes(512, seed: UInt8(i))
            try v.write(file, at: Int64(i * 1024), piece)
            model.replaceSubrange((i * 1024)..<(i * 1024 + 512), with: piece)
            try v.fs.fsync(file)
        }
        let last = Self.bytes(512, seed: 0xEE)
        try v.write(file, at: Int64((writes - 1) * 1024), last)
        model.replaceSubrange(((writes - 1) * 1024)..<((writes - 1) * 1024 + 512), with: last)
        let size = (writes - 1) * 1024 + 512
        let expected = Array(model[0..<size])
        // The fsync's own object is the first write; the compacted chunk the second.
        let pause = v.pauseObjectWrite(2)
        let synced = Mutex<Result<Void, FSError>?>(nil)
        let fs = v.fs
        Thread { synced.withLock { $0 = Result { () throws(FSError) in try fs.fsync(file) } } }.start()
        #expect(pause.reached.wait(timeout: .now() + 10) == .success, "no compaction")
        Self.otherOperationsFinish(v, paused: file, expecting: expected)
        if cut {
            #expect(Self.finishes { _ = try? fs.setattr(file, size: 0) }, "a truncation waited for a compaction")
        }
        v.stopPausing()
        pause.resume.signal()
        while synced.withLock({ $0 == nil }) { usleep(1_000) }
        #expect(throws: Never.self) { try synced.withLock { $0 }!.get() }
        let namespace = try v.engine.namespace(volume: v.fs.volume)
        let slices = try namespace.slices(ino: file, chunk: 0)
        if cut {
            #expect(slices.isEmpty, "a compaction committed over a truncation: \(slices.count) slices")
            _ = try v.fs.setattr(file, size: Int64(size))
            #expect(try v.fs.read(file, offset: 0, size: size).allSatisfy { $0 == 0 }, "bytes cut came back")
        } else {
            #expect(slices.count == 1, "the chunk was not compacted: \(slices.count) slices")
            #expect(try v.fs.read(file, offset: 0, size: size) == expected)
        }
        // A dropped compaction leaves no object behind.
        v.fs.waitForPurges()
        #expect(try namespace.objects(state: .writing).isEmpty)
    }

    /// Unlinking a file answers once its name is gone; its objects — every shard, each
    /// device's removals synced — are deleted in the background, without the lock, and
    /// unmount waits for them.
    @Test(arguments: ["replicated-3", "ec-4-2", "remote-disk"])
    func anUnlinkDeletesObjectsInTheBackground(className: String) throws {
        let v = try Volume(className)
        let file = try v.file("f")
        let kept = try v.file("other")
        let data = Self.bytes(3 * Self.chunk + 5, seed: 1)
        try v.write(file, at: 0, data)
        try v.fs.fsync(file)
        let keptData = Self.bytes(1000, seed: 2)
        try v.write(kept, at: 0, keptData)
        try v.fs.fsync(kept)
        let shardsBefore = v.shardCount()
        let namespace = try v.engine.namespace(volume: v.fs.volume)
        // Its full chunks go two to an object, however the write-back batched them: 2 or 3.
        let objects = try namespace.objects(state: .live).count - 1
        #expect((2...3).contains(objects), "\(objects) objects for a file of 3 chunks and 5 bytes")
        let pause = v.pauseObjectDelete()
        let fs = v.fs
        #expect(Self.finishes { try? fs.unlink(parent: 1, name: Array("f".utf8)) }, "the unlink waited for its objects' deletion")
        #expect(pause.reached.wait(timeout: .now() + 10) == .success, "the unlink deleted no object")
        Self.otherOperationsFinish(v, paused: kept, expecting: [1, 2, 3] + Array(keptData[3...]))
        let gone = Mutex(false)
        _ = Self.finishes {
            let missing = (try? fs.lookup(parent: 1, name: Array("f".utf8))) == nil
            gone.withLock { $0 = missing }
        }
        #expect(gone.withLock { $0 }, "the name is still there while its objects are deleted")
        #expect(try namespace.objects(state: .deleting).count == objects, "the file's objects are not marked 'deleting'")
        v.stopPausing()
        pause.resume.signal()
        v.fs.waitForPurges()
        let width = ["replicated-3": 3, "ec-4-2": 6, "remote-disk": 1][className]!
        #expect(v.shardCount() == shardsBefore - objects * width, "the file's shards are still there")
        #expect(try namespace.objects(state: .deleting).isEmpty)
        try v.fs.fsync(kept)
        #expect(try v.fs.read(kept, offset: 0, size: 1000) == [1, 2, 3] + Array(keptData[3...]))
    }

    /// A batch of objects that fails part-way (here: half the devices detached, so that of 16
    /// single-copy objects of two chunks written at once some land on a missing device) leaves nothing
    /// behind: the objects that were written are purged, not left 'writing' until the next
    /// start, and their shards are gone.
    @Test func aBatchThatFailsPurgesTheObjectsItWrote() throws {
        let v = try Volume("remote-disk")
        let namespace = try v.engine.namespace(volume: v.fs.volume)
        for h in 0..<7 { v.engine.objects.detach(DeviceID(rawValue: "h\(h)-d0")) }
        let pieces = (0..<32).map { i in
            VolumeFileSystem.Piece(ino: 99, chunk: Int64(i), extent: .init(start: 0, bytes: Self.bytes(Self.chunk, seed: UInt8(i))))
        }
        let written = Mutex(0)
        v.engine.objects.afterPlacement.withLock { $0 = { _ in written.withLock { $0 += 1 } } }
        #expect(throws: FSError.self) { _ = try v.fs.stage(pieces) }
        v.stopPausing()
        #expect(written.withLock { $0 } == 16)  // 32 chunks, two to an object
        v.fs.waitForPurges()
        #expect(try namespace.objects(state: .writing).isEmpty, "objects of the failed batch were left 'writing'")
        #expect(v.shardCount() == 0, "shards of the failed batch are still on the devices")
    }

    /// A deleted file's shards hold their room on the devices until the background delete
    /// gets to them; a write that finds a device full waits for the deletes queued and
    /// tries again, instead of failing with ENOSPC while the room is on its way back.
    @Test func aFullDeviceWaitsForTheDeletesQueued() throws {
        // One device of 4 MiB: a file of 2.5 MiB fits, and two do not, wherever their objects
        // go. (On 14 devices, placement put up to 31 of one 26 MiB file's 208 objects on one
        // 4 MiB device, which holds 31: about one run in twenty found it full with no
        // deletes to wait for.)
        let v = try Volume("remote-disk", hosts: 1, devicesPerHost: 1, deviceCapacity: 4 << 20, volumeCapacity: 3 << 20)
        let size = 40 * Self.chunk
        let piece = Self.bytes(Self.chunk, seed: 4)
        let first = try v.file("first")
        for offset in stride(from: 0, to: size, by: Self.chunk) { try v.write(first, at: Int64(offset), piece) }
        try v.fs.fsync(first)
        let pause = v.pauseObjectDelete()
        try v.fs.unlink(parent: 1, name: Array("first".utf8))
        #expect(pause.reached.wait(timeout: .now() + 10) == .success, "the unlink deleted no object")
        // The delete goes on half a second after the second file's commit starts.
        let resumed = Mutex(false)
        DispatchQueue(label: "resume").asyncAfter(deadline: .now() + 0.5) {
            v.stopPausing()
            resumed.withLock { $0 = true }
            pause.resume.signal()
        }
        let second = try v.file("second")
        for offset in stride(from: 0, to: size, by: Self.chunk) { try v.write(second, at: Int64(offset), piece) }
        #expect(throws: Never.self) { try v.fs.fsync(second) }
        #expect(resumed.withLock { $0 }, "the devices did not fill: the test proves nothing")
        #expect(try v.fs.read(second, offset: Int64(size - Self.chunk), size: Self.chunk) == piece)
    }
}
