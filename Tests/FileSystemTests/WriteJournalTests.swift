import Engine
import Foundation
import TestEngines
import Metadata
import StorageClasses
@testable import Storage
import Synchronization
import Testing
@testable import FileSystem

/// The journal of acknowledged, uncommitted writes (`WriteJournal`): what it replays, what
/// it skips, and a successor filesystem committing a killed one's writes.
@Suite struct WriteJournalTests {
    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("berth-journal-\(UUID().uuidString)").path
    }

    static func record(_ journal: WriteJournal, _ ino: Int64, _ offset: Int64, _ bytes: [UInt8]) throws -> [Int64] {
        let (reservation, lagging) = try journal.reserveWrite(ino: ino, offset: offset, count: bytes.count)
        bytes.withUnsafeBytes { journal.write(reservation, bytes: $0) }
        return lagging
    }

    static func settle(_ journal: WriteJournal, _ ino: Int64, through: UInt64? = nil) throws {
        try journal.settle([(ino: ino, through: through)])
    }

    static func writes(_ dir: String) -> [WriteJournal.Write] {
        WriteJournal.pending(in: dir).entries.compactMap { if case .write(let w) = $0 { w } else { nil } }
    }

    static func segments(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    @Test func replaysOnlyWritesNotSettledInOrder() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try WriteJournal(directory: dir)
        _ = try Self.record(journal, 5, 0, [1, 2, 3])   // sequence 1
        _ = try Self.record(journal, 6, 100, [4])       // 2
        _ = try Self.record(journal, 5, 3, [5])         // 3
        _ = try Self.record(journal, 5, 4, [6])         // 4: after what the commit below took
        try Self.settle(journal, 5, through: 3)
        _ = try Self.record(journal, 6, 0, [6, 7])
        let expected: [WriteJournal.Write] = [.init(ino: 6, offset: 100, bytes: [4]), .init(ino: 5, offset: 4, bytes: [6]),
                                              .init(ino: 6, offset: 0, bytes: [6, 7])]
        #expect(Self.writes(dir) == expected)
        #expect(WriteJournal.pending(in: dir).sequence == 5)
        try Self.settle(journal, 6)
        try Self.settle(journal, 5)
        // Nothing unsettled: the segment is back to its header alone.
        #expect(Self.writes(dir).isEmpty)
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/segment-0")[.size] as? Int
        #expect(size == WriteJournal.segmentHeaderSize)
        journal.remove()
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    @Test func aTornOrCorruptRecordIsNotReplayed() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try WriteJournal(directory: dir)
        _ = try Self.record(journal, 1, 0, Array(repeating: 7, count: 1000))
        _ = try Self.record(journal, 1, 1000, Array(repeating: 8, count: 1000))
        let path = dir + "/segment-0"
        let full = try #require(FileManager.default.contents(atPath: path))
        // The second record cut short (a write the daemon died in, never acknowledged).
        try full.prefix(full.count - 10).write(to: URL(fileURLWithPath: path))
        #expect(Self.writes(dir).map(\.offset) == [0])
        // A flipped byte in the first record's header: that record is not one; the next is.
        var corrupt = full
        corrupt[WriteJournal.segmentHeaderSize + 20] ^= 1
        try corrupt.write(to: URL(fileURLWithPath: path))
        #expect(Self.writes(dir).map(\.offset) == [1000])
        // Bytes that look like records but lack the journal's nonce (an application's data): none.
        var foreign = full
        foreign[WriteJournal.segmentHeaderSize + 32] ^= 1
        foreign[WriteJournal.segmentHeaderSize + WriteJournal.recordSize(1000) + 32] ^= 1
        try foreign.write(to: URL(fileURLWithPath: path))
        #expect(Self.writes(dir).isEmpty)
        // Intact again, but written under another boot (the host crashed since): ignored.
        var otherBoot = full
        otherBoot[8] = otherBoot[8] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        try otherBoot.write(to: URL(fileURLWithPath: path))
        #expect(Self.writes(dir).isEmpty)
        try full.write(to: URL(fileURLWithPath: path))
        #expect(Self.writes(dir).count == 2)
    }

    /// Records are placed in order and copied concurrently: one whose bytes were still being
    /// copied when the daemon died (never acknowledged) is skipped, the later ones replay.
    @Test func aWriteNotCopiedWholeIsSkippedAndLaterOnesReplay() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try WriteJournal(directory: dir)
        let (first, _) = try journal.reserveWrite(ino: 1, offset: 0, count: 3)
        _ = try Self.record(journal, 2, 10, [9, 9])
        // Not written yet: the later record replays.
        #expect(Self.writes(dir) == [.init(ino: 2, offset: 10, bytes: [9, 9])])
        // Its header and bytes, without the trailer that says they are whole: the same.
        let fd = open(dir + "/segment-0", O_WRONLY)
        let partial = first.header + [1, 2, 3]
        #expect(pwrite(fd, partial, partial.count, off_t(first.at)) == partial.count)
        close(fd)
        #expect(Self.writes(dir) == [.init(ino: 2, offset: 10, bytes: [9, 9])])
        [UInt8](arrayLiteral: 1, 2, 3).withUnsafeBytes { journal.write(first, bytes: $0) }
        #expect(Self.writes(dir).map(\.ino) == [1, 2])
    }

    /// A file written without pause never settles whole; its older segments still go once
    /// it is settled through their records.
    @Test func aFullSegmentStartsAnotherAndGoesOnceItsRecordsSettle() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try WriteJournal(directory: dir, segmentLimit: 4096)
        #expect(try Self.record(journal, 1, 0, Array(repeating: 1, count: 1000)).isEmpty)
        #expect(try Self.record(journal, 2, 0, Array(repeating: 2, count: 1000)).isEmpty)
        _ = try Self.record(journal, 2, 1000, Array(repeating: 2, count: 1000))
        #expect(try Self.record(journal, 2, 2000, Array(repeating: 2, count: 1500)).isEmpty)  // sequence 4
        // The segment is past its limit: the next write starts a new one, and the files with
        // records in the old one are to be committed whole.
        #expect(try Self.record(journal, 2, 3500, [3]) == [1, 2])  // 5, in segment 1
        #expect(Self.segments(dir) == ["segment-0", "segment-1"])
        try Self.settle(journal, 1)
        #expect(Self.segments(dir) == ["segment-0", "segment-1"])  // file 2 still has records in it
        try Self.settle(journal, 2, through: 4)  // its commit took what segment 0 holds
        #expect(Self.segments(dir) == ["segment-1"])
        #expect(Self.writes(dir) == [.init(ino: 2, offset: 3500, bytes: [3])])
    }

    /// A successor's journal starts after the old one's segments and sequence numbers: if it
    /// dies while replaying, the next one replays both, the old writes first.
    @Test func aJournalStartsAfterTheOneItReplays() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let old = try WriteJournal(directory: dir)
        _ = try Self.record(old, 1, 0, [1])
        let times = try old.recordTimes(ino: 1, atimeNs: nil, mtimeNs: 42)
        let (entries, sequence) = WriteJournal.pending(in: dir)
        #expect(entries == [.write(.init(ino: 1, offset: 0, bytes: [1])), .times(ino: 1, atimeNs: nil, mtimeNs: 42)])
        #expect(sequence == times)
        let new = try WriteJournal(directory: dir, after: sequence)
        _ = try Self.record(new, 1, 0, [1])
        _ = try Self.record(new, 1, 1, [2])
        #expect(Self.segments(dir) == ["segment-0", "segment-1"])
        #expect(Self.writes(dir).map(\.bytes) == [[1], [1], [2]])
        new.removeReplayedSegments()
        #expect(Self.segments(dir) == ["segment-1"])
        #expect(Self.writes(dir).map(\.bytes) == [[1], [2]])
    }

    // MARK: a filesystem and its successor

    final class Volume {
        let state = WriteJournalTests.directory()
        let engine: Engine
        let id: String
        var journal: String { state + "/journal/" + id }

        init(_ className: String, capacity: Int64 = 64 << 20) throws {
            engine = try Engine(configuration: EngineConfiguration.testing(state))
            try engine.addDevices((0..<6).flatMap { h in (0..<2).map { DeviceSpec(id: "h\(h)-d\($0)", host: "h\(h)", capacityBytes: 256 << 20) } })
            try engine.applyClasses([
                StorageClass(name: className, redundancy: className == "replicated-3" ? .replicated(copies: 3)
                             : className == "ec-4-2" ? .erasure(dataShards: 4, parityShards: 2) : .single,
                             chunkSizeBytes: 64 << 10, pgCount: 32),
            ])
            id = try engine.createVolume(name: "pvc", className: className, capacityBytes: capacity).id
        }

        deinit { try? FileManager.default.removeItem(atPath: state) }

        func mount(resuming: VolumeFileSystem.Resumed? = nil, journaling: Bool = true) throws -> VolumeFileSystem {
            try VolumeFileSystem(engine: engine, volume: id, resuming: resuming, journal: journal, journaling: journaling)
        }
    }

    static func create(_ fs: VolumeFileSystem, _ name: String) throws -> Int64 {
        let ino = try fs.create(parent: 1, name: Array(name.utf8), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0).ino
        try fs.open(ino)
        return ino
    }

    static func write(_ fs: VolumeFileSystem, _ ino: Int64, _ offset: Int64, _ bytes: [UInt8]) throws {
        _ = try bytes.withUnsafeBytes { buffer throws(FSError) in try fs.write(ino, offset: offset, bytes: buffer) }
    }

    /// A filesystem whose process "died" with bytes buffered (it is never flushed): a
    /// successor on the same journal commits them — after a truncation that came between,
    /// without undoing it — and keeps the times set on the file after its last write.
    @Test(arguments: ["replicated-3", "ec-4-2", "remote-disk"])
    func aSuccessorCommitsWhatAKilledDaemonAcknowledged(className: String) throws {
        let volume = try Volume(className)
        let first = try volume.mount()
        let ino = try Self.create(first, "log")
        try Self.write(first, ino, 0, Array(repeating: 0x41, count: 100_000))  // committed by the truncation below
        _ = try first.setattr(ino, size: 10)
        try Self.write(first, ino, 20, Array(repeating: 0x42, count: 10))      // buffered when the daemon "dies"
        try Self.write(first, ino, 70_000, Array(repeating: 0x43, count: 5))   // another chunk
        _ = try first.setattr(ino, mtimeNs: 1_000_000_000)                      // as tar does after writing
        let other = try Self.create(first, "other")
        try Self.write(first, other, 0, [0x44, 0x44, 0x44])
        try first.fsync(other)                                                   // settled: not replayed
        // What the database holds now: the truncated file, without the buffered bytes.
        #expect(try first.namespace.inode(ino).size == 10)

        let second = try volume.mount(resuming: .unknown)
        #expect(second.replayedWrites == 2)
        let record = try second.namespace.inode(ino)
        #expect(record.size == 70_005)  // committed by the replay
        #expect(record.mtimeNs == 1_000_000_000)
        var expected = [UInt8](repeating: 0, count: 70_005)
        for i in 0..<10 { expected[i] = 0x41 }
        for i in 20..<30 { expected[i] = 0x42 }
        for i in 70_000..<70_005 { expected[i] = 0x43 }
        #expect(try second.read(ino, offset: 0, size: 80_000) == expected)
        #expect(try second.read(other, offset: 0, size: 10) == [0x44, 0x44, 0x44])
        // Replayed and committed: nothing left to replay.
        #expect(WriteJournal.pending(in: volume.journal).entries.isEmpty)
        second.flushAll()
        second.endJournal()
        #expect(!FileManager.default.fileExists(atPath: volume.journal))
        withExtendedLifetime(first) {}
    }

    /// A file deleted with bytes buffered: its deletion is committed before the journal lets
    /// go of its writes, so a successor finds it gone — never back without its bytes.
    @Test func aDeletedFileStaysDeleted() throws {
        let volume = try Volume("remote-disk")
        let first = try volume.mount()
        let ino = try Self.create(first, "tmp")
        try Self.write(first, ino, 0, [1, 2, 3])
        try first.release(ino)
        try first.unlink(parent: 1, name: Array("tmp".utf8))
        let second = try volume.mount(resuming: .unknown)
        #expect(second.replayedWrites == 0)
        #expect(throws: FSError.noEntry) { try second.lookup(parent: 1, name: Array("tmp".utf8)) }
        withExtendedLifetime(first) {}
    }

    /// A mount that does not journal (no keeper) still replays what a journaling one left,
    /// then removes the journal.
    @Test func aMountWithoutJournalingReplaysAndRemovesTheJournal() throws {
        let volume = try Volume("replicated-3")
        let first = try volume.mount()
        let ino = try Self.create(first, "f")
        try Self.write(first, ino, 5, [7, 7])
        let second = try volume.mount(resuming: .unknown, journaling: false)
        #expect(second.replayedWrites == 1)
        #expect(try second.read(ino, offset: 0, size: 10) == [0, 0, 0, 0, 0, 7, 7])
        #expect(!FileManager.default.fileExists(atPath: volume.journal))
        withExtendedLifetime(first) {}
    }

    /// A commit settles the file through the writes it took, though newer bytes are
    /// buffered by then (a writer that never pauses would otherwise never let the journal go).
    @Test func aCommitSettlesWhatItTookWhileNewerBytesWait() throws {
        let volume = try Volume("remote-disk")
        let fs = try volume.mount()
        let ino = try Self.create(fs, "f")
        try Self.write(fs, ino, 0, [1, 1, 1])
        let reached = DispatchSemaphore(value: 0), resume = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        volume.engine.objects.afterPlacement.withLock { $0 = { _ in reached.signal(); resume.wait() } }
        let failed = Mutex(false)
        Thread {
            do { try fs.fsync(ino) } catch { failed.withLock { $0 = true } }
            done.signal()
        }.start()
        reached.wait()  // the commit took the first write and is writing its object
        volume.engine.objects.afterPlacement.withLock { $0 = nil }
        try Self.write(fs, ino, 10, [2, 2])
        resume.signal()
        done.wait()
        #expect(!failed.withLock { $0 })
        #expect(Self.writes(volume.journal) == [.init(ino: ino, offset: 10, bytes: [2, 2])])
        fs.flushAll()
    }

    /// A writer that never pauses keeps its journal bounded: the older segment goes once
    /// the file's commits have taken what it holds, though the file never settles whole.
    @Test func aBusyWriterKeepsItsJournalBounded() throws {
        let volume = try Volume("remote-disk", capacity: 1 << 30)
        let fs = try volume.mount()
        let ino = try Self.create(fs, "big")
        // 200 MiB without an fsync or a close, in pieces that always leave a chunk half
        // written (so no commit ever takes the whole buffer by itself): three segments' worth.
        let piece = [UInt8](repeating: 9, count: (1 << 20) + 100)
        for i in 0..<200 { try Self.write(fs, ino, Int64(i * piece.count), piece) }
        let bytes = Self.segments(volume.journal).reduce(0) { total, name in
            total + ((try? FileManager.default.attributesOfItem(atPath: volume.journal + "/" + name)[.size] as? Int) ?? 0)
        }
        #expect(bytes < 160 << 20, "journal holds \(bytes) bytes in \(Self.segments(volume.journal))")
        fs.flushAll()
    }
}
