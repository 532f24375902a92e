import Engine
import Foundation
import Metadata
import StorageClasses
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

    static func segments(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    @Test func replaysOnlyWritesNotSettledInOrder() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try WriteJournal(directory: dir)
        _ = try Self.record(journal, 5, 0, [1, 2, 3])
        _ = try Self.record(journal, 6, 100, [4])
        _ = try Self.record(journal, 5, 3, [5])
        try journal.settle([5])
        _ = try Self.record(journal, 6, 0, [6, 7])
        _ = try Self.record(journal, 5, 9, [8])  // after the settling: replayed
        #expect(WriteJournal.pending(in: dir) == [
            .init(ino: 6, offset: 100, bytes: [4]), .init(ino: 6, offset: 0, bytes: [6, 7]), .init(ino: 5, offset: 9, bytes: [8]),
        ])
        try journal.settle([6])
        try journal.settle([5])
        // Nothing unsettled: the segment is back to its header alone.
        #expect(WriteJournal.pending(in: dir).isEmpty)
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/segment-0")[.size] as? Int
        #expect(size == WriteJournal.segmentHeaderSize)
        journal.remove()
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    @Test func aTornOrCorruptTailIsNotReplayed() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try WriteJournal(directory: dir)
        _ = try Self.record(journal, 1, 0, Array(repeating: 7, count: 1000))
        _ = try Self.record(journal, 1, 1000, Array(repeating: 8, count: 1000))
        let path = dir + "/segment-0"
        let full = try #require(FileManager.default.contents(atPath: path))
        // The second record cut short (a write the daemon died in, never acknowledged).
        try full.prefix(full.count - 10).write(to: URL(fileURLWithPath: path))
        #expect(WriteJournal.pending(in: dir).map(\.offset) == [0])
        // A flipped byte in the first record's header: that record is not one; the next is.
        var corrupt = full
        corrupt[WriteJournal.segmentHeaderSize + 20] ^= 1
        try corrupt.write(to: URL(fileURLWithPath: path))
        #expect(WriteJournal.pending(in: dir).map(\.offset) == [1000])
        // Bytes that look like a record but lack the journal's nonce (an application's data): none.
        var foreign = full
        foreign[WriteJournal.segmentHeaderSize + 32] ^= 1
        foreign[WriteJournal.segmentHeaderSize + WriteJournal.recordSize(1000) + 32] ^= 1
        try foreign.write(to: URL(fileURLWithPath: path))
        #expect(WriteJournal.pending(in: dir).isEmpty)
        // Intact again, but written under another boot (the host crashed since): ignored.
        var otherBoot = full
        otherBoot[8] = otherBoot[8] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        try otherBoot.write(to: URL(fileURLWithPath: path))
        #expect(WriteJournal.pending(in: dir).isEmpty)
        try full.write(to: URL(fileURLWithPath: path))
        #expect(WriteJournal.pending(in: dir).count == 2)
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
        #expect(WriteJournal.pending(in: dir) == [.init(ino: 2, offset: 10, bytes: [9, 9])])
        // Its header and bytes, without the trailer that says they are whole: the same.
        let fd = open(dir + "/segment-0", O_WRONLY)
        let partial = first.header + [1, 2, 3]
        #expect(pwrite(fd, partial, partial.count, off_t(first.at)) == partial.count)
        close(fd)
        #expect(WriteJournal.pending(in: dir) == [.init(ino: 2, offset: 10, bytes: [9, 9])])
        [UInt8](arrayLiteral: 1, 2, 3).withUnsafeBytes { journal.write(first, bytes: $0) }
        #expect(WriteJournal.pending(in: dir).map(\.ino) == [1, 2])
    }

    @Test func aFullSegmentStartsAnotherAndGoesOnceItsFilesSettle() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try WriteJournal(directory: dir, segmentLimit: 4096)
        #expect(try Self.record(journal, 1, 0, Array(repeating: 1, count: 1000)).isEmpty)
        #expect(try Self.record(journal, 2, 0, Array(repeating: 2, count: 1000)).isEmpty)
        _ = try Self.record(journal, 2, 1000, Array(repeating: 2, count: 1000))
        #expect(try Self.record(journal, 2, 2000, Array(repeating: 2, count: 1500)).isEmpty)
        // The segment is past its limit: the next write starts a new one, and the files with
        // records in the old one are to be committed whole.
        #expect(try Self.record(journal, 3, 0, [3]) == [1, 2])
        #expect(Self.segments(dir) == ["segment-0", "segment-1"])
        try journal.settle([1])
        #expect(Self.segments(dir) == ["segment-0", "segment-1"])  // file 2 still has records in it
        try journal.settle([2])
        #expect(Self.segments(dir) == ["segment-1"])
        #expect(WriteJournal.pending(in: dir) == [.init(ino: 3, offset: 0, bytes: [3])])
    }

    /// A filesystem whose process "died" with bytes buffered: a successor on the same
    /// journal commits them — after a truncation that came between, without undoing it.
    @Test(arguments: ["replicated-3", "ec-4-2", "remote-disk"])
    func aSuccessorCommitsWhatAKilledDaemonAcknowledged(className: String) throws {
        let state = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let engine = try Engine(configuration: EngineConfiguration(stateDirectory: state))
        try engine.addDevices((0..<6).flatMap { h in (0..<2).map { DeviceSpec(id: "h\(h)-d\($0)", host: "h\(h)", capacityBytes: 256 << 20) } })
        try engine.applyClasses([
            StorageClass(name: className, redundancy: className == "replicated-3" ? .replicated(copies: 3)
                         : className == "ec-4-2" ? .erasure(dataShards: 4, parityShards: 2) : .single,
                         chunkSizeBytes: 64 << 10, pgCount: 32),
        ])
        let volume = try engine.createVolume(name: "pvc", className: className, capacityBytes: 64 << 20)
        let journal = state + "/journal/" + volume.id
        let first = try VolumeFileSystem(engine: engine, volume: volume.id, journal: journal)
        let ino = try first.create(parent: 1, name: Array("log".utf8), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0).ino
        try first.open(ino)
        func write(_ fs: VolumeFileSystem, _ offset: Int64, _ bytes: [UInt8]) throws {
            _ = try bytes.withUnsafeBytes { buffer throws(FSError) in try fs.write(ino, offset: offset, bytes: buffer) }
        }
        try write(first, 0, Array(repeating: 0x41, count: 100_000))   // committed by the truncation below
        _ = try first.setattr(ino, size: 10)
        try write(first, 20, Array(repeating: 0x42, count: 10))       // buffered when the daemon "dies"
        try write(first, 70_000, Array(repeating: 0x43, count: 5))    // another chunk
        let other = try first.create(parent: 1, name: Array("other".utf8), kind: InodeRecord.regular, mode: 0o644, uid: 0, gid: 0).ino
        _ = try [UInt8](repeating: 0x44, count: 3).withUnsafeBytes { buffer throws(FSError) in try first.write(other, offset: 0, bytes: buffer) }
        try first.fsync(other)                                        // settled: not replayed
        // What the database holds now: the truncated file, without the buffered bytes.
        #expect(try first.namespace.inode(ino).size == 10)

        // The successor (the first is never flushed: as after a SIGKILL).
        let second = try VolumeFileSystem(engine: engine, volume: volume.id, resuming: .unknown, journal: journal)
        #expect(second.replayedWrites == 2)
        #expect(try second.namespace.inode(ino).size == 70_005)  // committed by the replay
        let bytes = try second.read(ino, offset: 0, size: 80_000)
        var expected = [UInt8](repeating: 0, count: 70_005)
        for i in 0..<10 { expected[i] = 0x41 }
        for i in 20..<30 { expected[i] = 0x42 }
        for i in 70_000..<70_005 { expected[i] = 0x43 }
        #expect(bytes == expected)
        #expect(try second.read(other, offset: 0, size: 10) == [0x44, 0x44, 0x44])
        // Replayed and committed: a third start finds nothing to do.
        second.flushAll()
        second.endJournal()
        #expect(!FileManager.default.fileExists(atPath: journal))
        withExtendedLifetime(first) {}
    }
}
