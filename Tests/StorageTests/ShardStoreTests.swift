import Codec
import Foundation
import Placement
import Synchronization
import Testing
import TestSupport
@testable import Storage

@Suite struct ShardStoreTests {
    let dir = TemporaryDirectory("berth-shards")
    let generator = ObjectIDGenerator(node: 7)

    /// `unnamed`: shards written as O_TMPFILE files linked into place (the default), or as
    /// named files in tmp/ renamed into place (the fallback).
    func device(capacity: Int = 1 << 20, unnamed: Bool = true) throws -> ShardStore {
        let store = try ShardStore(id: "dev-a", root: dir.path + "/dev-a", capacityBytes: capacity)
        store.unnamedTemporaries.store(unnamed, ordering: .relaxed)
        return store
    }

    /// Sizes around the writeback pieces too (a payload goes in 1 MiB pieces).
    @Test(arguments: [0, 1, 4095, 65_536, ShardStore.writebackPiece - 1, ShardStore.writebackPiece,
                      ShardStore.writebackPiece + 1, 2 * ShardStore.writebackPiece + 4097], [true, false])
    func roundTrip(size: Int, unnamed: Bool) throws {
        let store = try device(capacity: 4 << 20, unnamed: unnamed)
        let id = generator.next()
        let bytes = randomBytes(size, seed: UInt64(size))
        try store.write(object: id, position: 3, objectSize: size * 2, bytes: bytes)
        let shard = try store.read(object: id, position: 3)
        expectSame(shard.payload, bytes)
        #expect(shard.objectSize == size * 2)
        #expect(store.usedBytes == ShardHeader.fileBytes(payloadLength: size))
        #expect(ShardStore.entries(dir.path + "/dev-a/tmp").isEmpty)
        #expect(try store.allShards().map { "\($0.object).\($0.position)" } == ["\(id).3"])
    }

    func corrupt(_ store: ShardStore, _ id: ObjectID, _ position: Int, at offset: Int) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: store.path(id, position)))
        try handle.seek(toOffset: UInt64(offset))
        let byte = try handle.read(upToCount: 1)!
        try handle.seek(toOffset: UInt64(offset))
        try handle.write(contentsOf: Data([byte[0] ^ 0x01]))
        try handle.close()
    }

    @Test func corruptionIsDetected() throws {
        let store = try device()
        let id = generator.next()
        try store.write(object: id, position: 0, objectSize: 100, bytes: randomBytes(100, seed: 1))
        try corrupt(store, id, 0, at: ShardHeader.fileBytes(payloadLength: 100) - 100 + 50)
        #expect(throws: StorageError.corruptShard(device: "dev-a", shard: "\(id).0", reason: "payload checksum mismatch in block 0")) {
            _ = try store.read(object: id, position: 0)
        }
        try store.write(object: id, position: 1, objectSize: 100, bytes: randomBytes(100, seed: 1))
        try corrupt(store, id, 1, at: 20)
        #expect(throws: StorageError.corruptShard(device: "dev-a", shard: "\(id).1", reason: "header checksum mismatch")) {
            _ = try store.read(object: id, position: 1)
        }
        // Truncation.
        try store.write(object: id, position: 2, objectSize: 100, bytes: randomBytes(100, seed: 1))
        truncate(store.path(id, 2), off_t(ShardHeader.fileBytes(payloadLength: 100) - 90))
        #expect(throws: StorageError.self) { _ = try store.read(object: id, position: 2) }
        // A shard file under another name (e.g. copied by hand) is caught by the header.
        let other = generator.next()
        try store.write(object: other, position: 0, objectSize: 1, bytes: [1])
        try FileManager.default.createDirectory(atPath: store.directory(for: id), withIntermediateDirectories: true)
        try? FileManager.default.removeItem(atPath: store.path(id, 3))
        try FileManager.default.copyItem(atPath: store.path(other, 0), toPath: store.path(id, 3))
        #expect(throws: StorageError.corruptShard(device: "dev-a", shard: "\(id).3", reason: "header names \(other).0")) {
            _ = try store.read(object: id, position: 3)
        }
    }

    /// Every range of a multi-block shard reads back exactly, touching only its blocks:
    /// a corrupt block fails the ranges that cover it and no other.
    @Test func rangeReadsVerifyOnlyTheirBlocks() throws {
        let store = try device(capacity: 4 << 20)
        let id = generator.next()
        let size = 3 * ShardHeader.blockSize + 100
        let bytes = randomBytes(size, seed: 9)
        try store.write(object: id, position: 1, objectSize: size, bytes: bytes)
        let block = ShardHeader.blockSize
        let edges = [0, 1, block - 1, block, block + 1, 2 * block, 3 * block - 1, 3 * block, size - 1, size]
        for lower in edges {
            for upper in edges where upper >= lower {
                let got = try store.read(object: id, position: 1, range: lower..<upper)
                expectSame(got.bytes, Array(bytes[lower..<upper]))
                #expect(got.objectSize == size)
            }
        }
        #expect(throws: StorageError.self) { _ = try store.read(object: id, position: 1, range: 0..<(size + 1)) }
        // Flip a byte in block 1: ranges inside blocks 0 and 2 still read; anything over block 1 fails.
        try corrupt(store, id, 1, at: ShardHeader.fileBytes(payloadLength: size) - size + block + 7)
        expectSame(try store.read(object: id, position: 1, range: 0..<block).bytes, Array(bytes[0..<block]))
        expectSame(try store.read(object: id, position: 1, range: (2 * block)..<size).bytes, Array(bytes[(2 * block)..<size]))
        #expect(throws: StorageError.corruptShard(device: "dev-a", shard: "\(id).1", reason: "payload checksum mismatch in block 1")) {
            _ = try store.read(object: id, position: 1, range: (block - 1)..<(block + 1))
        }
        #expect(throws: StorageError.self) { _ = try store.read(object: id, position: 1) }
        // A damaged block table is caught before any block is trusted.
        try store.write(object: id, position: 2, objectSize: size, bytes: bytes)
        try corrupt(store, id, 2, at: ShardHeader.size + 5)
        #expect(throws: StorageError.corruptShard(device: "dev-a", shard: "\(id).2", reason: "block table checksum mismatch")) {
            _ = try store.read(object: id, position: 2, range: 0..<1)
        }
    }

    /// Shards of the first format (header, then payload with one checksum) still read,
    /// whole and by range.
    @Test func firstFormatShardsStillRead() throws {
        let store = try device()
        let id = generator.next()
        let bytes = randomBytes(10_000, seed: 11)
        var header = Array("BERTHSH1".utf8)
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { header += $0 } }
        put(UInt64(bytes.count)); put(CRC32C.checksum(bytes)); put(UInt32(0)); put(UInt64(bytes.count))
        put(id.high); put(id.low)
        header += [UInt8](repeating: 0, count: 12)
        put(CRC32C.checksum(header))
        try FileManager.default.createDirectory(atPath: store.directory(for: id), withIntermediateDirectories: true)
        try Data(header + bytes).write(to: URL(fileURLWithPath: store.path(id, 0)))
        expectSame(try store.read(object: id, position: 0).payload, bytes)
        expectSame(try store.read(object: id, position: 0, range: 5000..<5100).bytes, Array(bytes[5000..<5100]))
        try corrupt(store, id, 0, at: ShardHeader.size + 9000)
        #expect(throws: StorageError.corruptShard(device: "dev-a", shard: "\(id).0", reason: "payload checksum mismatch")) {
            _ = try store.read(object: id, position: 0, range: 0..<10)
        }
    }

    /// A file at a shard's name that is not a whole shard (payload bytes, no header: a
    /// partial copy) reads as corrupt, never as data; writing the shard replaces it
    /// atomically and counts its bytes once.
    @Test func partialFileAtAShardsNameIsNeverData() throws {
        let store = try device()
        let id = generator.next()
        let bytes = randomBytes(9000, seed: 12)
        try FileManager.default.createDirectory(atPath: store.directory(for: id), withIntermediateDirectories: true)
        let partial = [UInt8](repeating: 0, count: ShardHeader.fileBytes(payloadLength: 9000) - 9000) + bytes.prefix(5000)
        try Data(partial).write(to: URL(fileURLWithPath: store.path(id, 0)))
        #expect(throws: StorageError.corruptShard(device: "dev-a", shard: "\(id).0", reason: "bad magic")) {
            _ = try store.read(object: id, position: 0)
        }
        try store.write(object: id, position: 0, objectSize: 9000, bytes: bytes)
        expectSame(try store.read(object: id, position: 0).payload, bytes)
        #expect(ShardStore.entries(dir.path + "/dev-a/tmp").isEmpty)
        let reopened = try ShardStore(id: "dev-a", root: dir.path + "/dev-a", capacityBytes: 1 << 20, create: false)
        #expect(reopened.usedBytes == ShardHeader.fileBytes(payloadLength: 9000))
    }

    @Test func missingShardAndMissingDevice() throws {
        let store = try device()
        let id = generator.next()
        #expect(throws: StorageError.shardNotFound(device: "dev-a", shard: "\(id).0")) { _ = try store.read(object: id, position: 0) }
        try store.delete(object: id, position: 0)  // deleting what is not there succeeds
        try FileManager.default.removeItem(atPath: dir.path + "/dev-a")
        #expect(!store.isReachable)
        #expect(throws: StorageError.deviceUnavailable("dev-a", reason: "\(dir.path)/dev-a is gone")) {
            _ = try store.read(object: id, position: 0)
        }
        #expect(throws: StorageError.deviceUnavailable("dev-a", reason: "\(dir.path)/dev-a is gone")) {
            try store.write(object: id, position: 0, objectSize: 1, bytes: [1])
        }
    }

    /// A device directory emptied and initialized anew under a running process (a replaced
    /// disk, a test's `destroy`): the leaves it knew are gone, and a write makes its leaf
    /// again rather than failing to link into it — named and unnamed temporaries alike.
    @Test(arguments: [true, false])
    func aLeafGoneUnderTheProcessIsMadeAgain(unnamed: Bool) throws {
        let store = try device(unnamed: unnamed)
        let a = generator.next()
        try store.write(object: a, position: 0, objectSize: 10, bytes: randomBytes(10, seed: 1))
        #expect(store.leafIsKnown(store.leaf(a)))
        try FileManager.default.removeItem(atPath: dir.path + "/dev-a")
        _ = try ShardStore(id: "dev-a", root: dir.path + "/dev-a", capacityBytes: 1 << 20)
        try store.write(object: a, position: 1, objectSize: 10, bytes: randomBytes(10, seed: 2))
        expectSame(try store.read(object: a, position: 1).payload, randomBytes(10, seed: 2))
        #expect(ShardStore.entries(dir.path + "/dev-a/tmp").isEmpty)
    }

    @Test func fullDeviceSaysNoSpaceAndSpaceComesBack() throws {
        let store = try device(capacity: 10_000)
        let a = generator.next(), b = generator.next()
        try store.write(object: a, position: 0, objectSize: 6000, bytes: randomBytes(6000, seed: 2))
        #expect(throws: StorageError.noSpace(device: "dev-a", neededBytes: 6072, freeBytes: 10_000 - 6072)) {
            try store.write(object: b, position: 0, objectSize: 6000, bytes: randomBytes(6000, seed: 3))
        }
        #expect(!store.contains(object: b, position: 0))
        #expect(store.usedBytes == 6072)  // header 64 + two block checksums 8 + 6000
        try store.delete(object: a, position: 0)
        #expect(store.usedBytes == 0)
        try store.write(object: b, position: 0, objectSize: 6000, bytes: randomBytes(6000, seed: 3))
    }

    /// A retry rewrites the shard in place of the old one (the last write is what reads back),
    /// counting its bytes once, and leaves nothing in tmp/.
    @Test(arguments: [true, false])
    func retriedWriteReplacesWithoutDoubleCounting(unnamed: Bool) throws {
        let store = try device(unnamed: unnamed)
        let id = generator.next()
        for seed in 0..<3 as Range<UInt64> { try store.write(object: id, position: 0, objectSize: 500, bytes: randomBytes(500, seed: seed)) }
        #expect(store.usedBytes == ShardHeader.fileBytes(payloadLength: 500))
        expectSame(try store.read(object: id, position: 0).payload, randomBytes(500, seed: 2))
        #expect(ShardStore.entries(dir.path + "/dev-a/tmp").isEmpty)
    }

    /// Whether `condition` holds within 10 s (a thread of a busy pool may start late).
    static func eventually(_ condition: () -> Bool) -> Bool {
        for _ in 0..<10_000 {
            if condition() { return true }
            usleep(1_000)
        }
        return condition()
    }

    /// This process's open files made with O_TMPFILE in `directory` (the kernel shows them
    /// as `directory/#inode (deleted)`).
    static func openUnnamedFiles(in directory: String) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd) else { return false }
            return target.hasPrefix(directory + "/#") && target.hasSuffix(" (deleted)")
        }.count
    }

    /// A shard waiting for its object's row takes its final name only when the row is
    /// durable: the write blocks until then; if the row fails, nothing of it remains.
    @Test(arguments: [true, false])
    func shardTakesItsNameOnlyAfterTheGate(unnamed: Bool) throws {
        let store = try device(unnamed: unnamed)
        let bytes = randomBytes(3000, seed: 5)
        for opens in [true, false] {
            let id = generator.next()
            let gate = Promise<Bool>()
            let done = DispatchSemaphore(value: 0)
            let outcome = Mutex<StorageError??>(nil)
            DispatchQueue.global().async {
                let error: StorageError? = bytes.withUnsafeBytes { buffer in
                    do throws(StorageError) {
                        try store.write(object: id, position: 0, objectSize: 3000, payload: buffer, renameAfter: gate)
                        return nil
                    } catch { return error }
                }
                outcome.withLock { $0 = .some(error) }
                done.signal()
            }
            let waited = done.wait(timeout: .now() + 0.3) == .timedOut
            #expect(waited, "the write must wait for the gate")
            #expect(!store.contains(object: id, position: 0))
            // Written meanwhile: without a name at all (an open file in tmp/ that no entry
            // names), or named in tmp/.
            let tmp = dir.path + "/dev-a/tmp"
            #expect(Self.eventually { unnamed ? Self.openUnnamedFiles(in: tmp) == 1 : ShardStore.entries(tmp).count == 1 })
            #expect(ShardStore.entries(tmp).count == (unnamed ? 0 : 1))
            gate.fulfill(opens)
            if waited { done.wait() }
            if opens {
                #expect(outcome.withLock { $0 } == .some(nil))
                expectSame(try store.read(object: id, position: 0).payload, bytes)
            } else {
                #expect(outcome.withLock { $0 }??.description.contains("abandoned") == true)
                #expect(!store.contains(object: id, position: 0))
            }
            #expect(ShardStore.entries(dir.path + "/dev-a/tmp").isEmpty)
        }
        #expect(store.usedBytes == ShardHeader.fileBytes(payloadLength: 3000))  // the abandoned one is not counted
    }

    /// A shard's leaf directory is made (and its parent synced) beside the payload write,
    /// once: a second shard in the same leaf finds it known. A leaf that cannot be made
    /// fails the write with the device's error and leaves nothing behind.
    @Test func leafDirectoriesAreMadeOnceAndTheirFailureIsAWriteError() throws {
        let store = try device()
        let a = generator.next()
        let leaf = store.leaf(a)
        #expect(!FileManager.default.fileExists(atPath: store.directory(leaf: leaf)))
        try store.write(object: a, position: 0, objectSize: 10, bytes: randomBytes(10, seed: 6))
        #expect(FileManager.default.fileExists(atPath: store.directory(leaf: leaf)))
        #expect(store.leafIsKnown(leaf))
        // Another object in the same leaf, and a retry: no leaf work, both read back.
        let b = ObjectID(high: a.high, low: a.low &+ 1)
        #expect(store.leaf(b) == leaf)
        try store.write(object: b, position: 1, objectSize: 10, bytes: randomBytes(10, seed: 7))
        expectSame(try store.read(object: b, position: 1).payload, randomBytes(10, seed: 7))
        expectSame(try store.read(object: a, position: 0).payload, randomBytes(10, seed: 6))

        // A leaf whose parent is a file cannot be made (an id 2^20 ms away: another top).
        let c = ObjectID(high: a.high ^ (1 << (16 + 20)), low: a.low)
        #expect(store.leaf(c) >> 8 != leaf >> 8)
        let top = dir.path + "/dev-a/shards/" + ShardStore.hex2(store.leaf(c) >> 8)
        try FileManager.default.removeItem(atPath: top)
        #expect(FileManager.default.createFile(atPath: top, contents: Data([1])))
        let used = store.usedBytes
        #expect(throws: StorageError.io(device: "dev-a", operation: "mkdir \(store.directory(leaf: store.leaf(c)))", errno: ENOTDIR)) {
            try store.write(object: c, position: 0, objectSize: 10, bytes: randomBytes(10, seed: 8))
        }
        #expect(!store.leafIsKnown(store.leaf(c)))
        #expect(store.usedBytes == used)
        #expect(ShardStore.entries(dir.path + "/dev-a/tmp").isEmpty)
    }

    /// A new device files shards by when their object was made: ids of the same 4.096 s
    /// share a leaf (bits 12–27 of the milliseconds), the next window takes the next leaf,
    /// and the scheme is recorded on the device and kept on reopening.
    @Test func objectsMadeTogetherShareALeaf() throws {
        let store = try device()
        #expect(store.leafScheme == .byTime)
        #expect(ShardStore.readSmallFile(dir.path + "/dev-a/leaf-scheme") == "time-4096ms\n")
        func id(_ ms: UInt64, _ low: UInt64) -> ObjectID { ObjectID(high: ms << 16 | 7, low: low) }
        let early = id(0x19_3456_7000, 1), late = id(0x19_3456_7fff, 2), next = id(0x19_3456_8000, 3)
        #expect(store.leaf(early) == 0x4567 && store.leaf(late) == 0x4567 && store.leaf(next) == 0x4568)
        for (i, object) in [early, late, next].enumerated() {
            try store.write(object: object, position: i, objectSize: 10, bytes: randomBytes(10, seed: UInt64(i)))
        }
        #expect(Set(ShardStore.entries(dir.path + "/dev-a/shards/45/67")) == ["\(early).0", "\(late).1"])
        #expect(ShardStore.entries(dir.path + "/dev-a/shards/45/68") == ["\(next).2"])
        // Every other leaf is still to be made.
        let made = (0..<256).flatMap { top in ShardStore.entries(dir.path + "/dev-a/shards/" + ShardStore.hex2(top)) }
        #expect(made.sorted() == ["67", "68"])
        let reopened = try ShardStore(id: "dev-a", root: dir.path + "/dev-a", capacityBytes: 1 << 20)
        #expect(reopened.leafScheme == .byTime)
        for (i, object) in [early, late, next].enumerated() {
            expectSame(try reopened.read(object: object, position: i).payload, randomBytes(10, seed: UInt64(i)))
        }
    }

    /// A device made before the `leaf-scheme` file existed keeps its hashed leaves — the
    /// top two bytes of mix64(high ^ low) — so an upgrade finds every shard where it was.
    /// An unknown scheme is refused, naming the file.
    @Test func devicesWithoutALeafSchemeKeepHashedLeaves() throws {
        _ = try device()
        try FileManager.default.removeItem(atPath: dir.path + "/dev-a/leaf-scheme")
        let store = try device()
        #expect(store.leafScheme == .hashed)
        let ids = (0..<20).map { _ in generator.next() }
        for (i, object) in ids.enumerated() {
            try store.write(object: object, position: 0, objectSize: 10, bytes: randomBytes(10, seed: UInt64(i)))
            let hash = StableHash.mix64(object.high ^ object.low) >> 48
            let path = dir.path + "/dev-a/shards/" + ShardStore.hex2(Int(hash >> 8)) + "/" + ShardStore.hex2(Int(hash & 0xff)) + "/\(object).0"
            #expect(FileManager.default.fileExists(atPath: path))
        }
        let reopened = try device()
        #expect(reopened.leafScheme == .hashed)
        for (i, object) in ids.enumerated() {
            expectSame(try reopened.read(object: object, position: 0).payload, randomBytes(10, seed: UInt64(i)))
        }
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/dev-a/leaf-scheme"))

        try "spiral\n".write(toFile: dir.path + "/dev-a/leaf-scheme", atomically: false, encoding: .utf8)
        #expect(throws: StorageError.invalidDevice("device dev-a: \(dir.path)/dev-a/leaf-scheme names an unknown leaf scheme \"spiral\"")) {
            _ = try device()
        }
    }

    /// A write into a new leaf completes while every thread of the global queue is busy:
    /// the leaf is made on a queue of the store's own. (On the global queue — one thread per
    /// CPU, shared with Swift concurrency — two writers blocked there waiting for leaves
    /// queued behind them never woke: a hang seen in CI.) Spinning threads hold the pool,
    /// as blocked ones do; the 60 s bound only keeps a hang from stalling the suite.
    @Test func leafWorkDoesNotNeedTheGlobalQueue() throws {
        let store = try device()
        let id = generator.next()
        #expect(!store.leafIsKnown(store.leaf(id)))
        let outcome = GlobalQueueHold.run { () -> StorageError? in
            do throws(StorageError) {
                try store.write(object: id, position: 0, objectSize: 10, bytes: randomBytes(10, seed: 9))
                return nil
            } catch { return error }
        }
        #expect(outcome != nil, "the write waited for the global queue")
        #expect(outcome == .some(nil))
    }

    /// The hold the test above relies on catches work queued on the global queue: a block
    /// queued there first has still not run when work on a queue of its own, queued after
    /// it, has finished. (Events in order, not a duration.)
    @Test func theHoldCatchesWorkThatWaitsForTheGlobalQueue() {
        let outcome = GlobalQueueHold.run { () -> (globalRan: Bool, ownRan: Bool) in
            let globalRan = Atomic<Bool>(false)
            DispatchQueue.global().async { globalRan.store(true, ordering: .sequentiallyConsistent) }
            let ran = DispatchSemaphore(value: 0)
            DispatchQueue(label: "own").async { ran.signal() }  // async: `sync` would run it on this thread
            ran.wait()
            return (globalRan.load(ordering: .sequentiallyConsistent), true)
        }
        #expect(outcome?.ownRan == true, "work on its own queue did not finish")
        #expect(outcome?.globalRan == false, "work queued on the global queue ran while the hold held it")
    }

    @Test func reopenCountsBytesDropsTempFilesAndChecksIdentity() throws {
        let store = try device()
        let id = generator.next()
        try store.write(object: id, position: 0, objectSize: 300, bytes: randomBytes(300, seed: 5))
        _ = FileManager.default.createFile(atPath: dir.path + "/dev-a/tmp/leftover.0.xyz", contents: Data(count: 99))
        let reopened = try ShardStore(id: "dev-a", root: dir.path + "/dev-a", capacityBytes: 1 << 20, create: false)
        #expect(reopened.usedBytes == ShardHeader.fileBytes(payloadLength: 300))
        #expect(ShardStore.entries(dir.path + "/dev-a/tmp").isEmpty)
        expectSame(try reopened.read(object: id, position: 0).payload, randomBytes(300, seed: 5))
        #expect(throws: StorageError.invalidDevice("directory \(dir.path)/dev-a belongs to device \"dev-a\", not \"dev-b\"")) {
            _ = try ShardStore(id: "dev-b", root: dir.path + "/dev-a", capacityBytes: 1 << 20)
        }
        #expect(throws: StorageError.self) { _ = try ShardStore(id: "dev-c", root: dir.path + "/nothing", capacityBytes: 1, create: false) }
    }

    @Test func objectIDs() {
        let g = ObjectIDGenerator(node: 0xBEEF, start: 41, clockMilliseconds: { 1_700_000_000_000 })
        let a = g.next(), b = g.next()
        #expect(a != b && a < b)
        #expect(a.milliseconds == 1_700_000_000_000)
        #expect(a.high & 0xFFFF == 0xBEEF)
        #expect(a.low == 42)
        #expect(ObjectID(a.description) == a)
        #expect(a.description.count == 32)
        // The on-disk name: fixed-width lowercase hex of high then low, as String(radix:) pads it.
        #expect(ObjectID(high: 0x0123_4567_89ab_cdef, low: 0xf).description == "0123456789abcdef000000000000000f")
        for _ in 0..<1000 {
            let id = ObjectID(high: .random(in: 0...(.max)), low: .random(in: 0...(.max)))
            let padded = { (v: UInt64) in String(repeating: "0", count: 16 - String(v, radix: 16).count) + String(v, radix: 16) }
            #expect(id.description == padded(id.high) + padded(id.low))
            #expect(ObjectID(id.description) == id)
        }
        #expect(ObjectID("not hex") == nil)
        #expect(ObjectID(String(repeating: "g", count: 32)) == nil)
        #expect(ObjectID(String(repeating: "A", count: 32)) == nil)  // lowercase only
        // The PG hash is fixed forever (documented in docs/storage.md).
        #expect(ObjectID(high: 0, low: 0).pg(count: 256) == 0)
        #expect(ObjectID(high: 1, low: 2).pg(count: 1000) == Int(StableHash.mix64(1 ^ StableHash.mix64(2)) % 1000))
    }
}
