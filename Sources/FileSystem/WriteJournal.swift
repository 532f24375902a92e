import Codec
import Foundation
import Glibc

/// The writes a daemon acknowledged and has not committed yet, kept where they outlive its
/// process: files of the state directory's page cache, never fsynced — they survive a
/// SIGKILL of the daemon, not a crash of the host (after which they are ignored: as with
/// any page cache, only fsynced data outlives the host).
///
/// Writes are buffered per file and committed later (`VolumeFileSystem`); a daemon killed
/// in between — while the application's fsync is being processed, say — would lose bytes
/// the kernel was told were written, and the successor, handed the same FUSE session, would
/// answer the resent fsync with success. So every write is put here before it is
/// acknowledged, and the successor replays what was not committed before it serves.
///
/// A file is *settled through* a sequence number once every write to it up to that one is
/// committed (a buffer taken whole and committed holds every write since the last one): a
/// marker then says so, and replay skips those writes. Every change of a file's bytes other
/// than a write (a truncation, a punched hole, a deletion) commits the file's buffered bytes
/// first, which settles it, so replaying a write can never undo a later change: only the
/// writes since a file's last settling are replayed, in order. Times an application sets
/// on a file with buffered bytes are journaled too (the commit would otherwise stamp the
/// write time over them).
///
/// The journal is a sequence of segments (`segment-N`), the current one appended to. When
/// no file is unsettled, every segment is dropped and the current one starts again empty —
/// which a writer that fsyncs or closes its files brings about all the time. A writer that
/// keeps its file busy makes the current segment grow past `segmentLimit` (64 MiB): a new
/// one is started and the files with unsettled records in the older ones are returned to be
/// committed whole, after which those segments go (oldest first).
///
/// Format: a segment starts with `magic`, the boot id of the host and a random nonce; then
/// records, each at a multiple of 8 bytes: a 48-byte header (kind, length, sequence, inode,
/// offset, the nonce, CRC-32C of the header) and, for a write, its bytes (padded to 8) and a
/// trailer (its sequence number again). A write's place and sequence number are taken where
/// its order is decided, under the filesystem's lock; the record is written afterwards, in
/// one call, outside that lock, concurrently with other writes' records. So replay may meet
/// a place not written yet (zeros) or a record without its trailer (being copied when the
/// daemon died: never acknowledged): it looks for the next valid header 8 bytes further on
/// (the nonce keeps an application's data from passing for one). The data has no checksum
/// of its own: within one boot the page cache holds what was written, and a journal of an
/// earlier boot is ignored.
final class WriteJournal: @unchecked Sendable {
    /// A write to replay.
    struct Write: Equatable {
        var ino: Int64
        var offset: Int64
        var bytes: [UInt8]
    }

    /// What replay does, in order: writes, and times set on files with buffered bytes.
    enum Entry: Equatable {
        case write(Write)
        case times(ino: Int64, atimeNs: Int64?, mtimeNs: Int64?)

        var ino: Int64 {
            switch self {
            case .write(let w): w.ino
            case .times(let ino, _, _): ino
            }
        }
    }

    let directory: String
    final class Segment {
        let number: Int
        let descriptor: Int32
        var size: Int
        /// Per file with records here not settled since, the latest one's sequence number.
        var latest: [Int64: UInt64] = [:]
        /// Records placed here that are still being written (`Reservation`).
        var writing = 0
        /// Unlinked, closed once nothing is being written to it.
        var dropped = false
        init(number: Int, descriptor: Int32, size: Int) { (self.number, self.descriptor, self.size) = (number, descriptor, size) }
    }
    /// Oldest first; the last is appended to. All state is under `lock`.
    private var segments: [Segment] = []
    /// Per unsettled file, the sequence number of its latest write.
    private var unsettled: [Int64: UInt64] = [:]
    private var sequence: UInt64 = 0
    private let nonce = UInt64.random(in: 1...UInt64.max)
    private let lock = NSLock()
    /// Set when a record could not be written: the journal is to be dropped.
    private(set) var failure: Failure?

    static let magic = Array("BERTHWJ2".utf8)
    static let segmentHeaderSize = 56
    static let recordHeaderSize = 48
    /// After a write's bytes: its sequence number.
    static let trailerSize = 8
    /// The current segment's size past which a new one starts.
    let segmentLimit: Int
    static let defaultSegmentLimit = 64 << 20
    private enum Kind: UInt32 { case write = 1, settled = 2, times = 3 }

    /// Starts a journal in `directory`, after the segments already there (`pending(in:)`
    /// reads them; their writes, replayed, are journaled again here, then
    /// `removeReplayedSegments` lets the old ones go), its sequence numbers above theirs.
    init(directory: String, after replayedSequence: UInt64 = 0, segmentLimit: Int = defaultSegmentLimit) throws {
        self.directory = directory
        self.segmentLimit = segmentLimit
        sequence = replayedSequence
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        replayed = Self.segmentNames(in: directory)
        let first = replayed.compactMap { Int($0.dropFirst(8)) }.max().map { $0 + 1 } ?? 0
        segments.append(try startSegment(number: first))
    }

    /// The segments that were there when the journal started.
    private var replayed: [String]

    /// Removes the segments that were there when the journal started (once what they held
    /// is journaled again, or committed).
    func removeReplayedSegments() {
        lock.withLock {
            for name in replayed { unlink(directory + "/" + name) }
            replayed = []
        }
    }

    deinit { for segment in segments where !segment.dropped { Glibc.close(segment.descriptor) } }

    /// Whether nothing is unsettled.
    var isEmpty: Bool { lock.withLock { unsettled.isEmpty } }

    /// A write's place and sequence number in the journal, taken where the write's order is
    /// decided (under the filesystem's lock, as its bytes join the file's buffer); its record
    /// is written there afterwards (`write`), before the write is acknowledged.
    struct Reservation {
        let segment: Segment
        let at: Int
        let header: [UInt8]
        let sequence: UInt64
    }

    /// Reserves the record of a write of `count` bytes at `offset` of `ino`; also returns
    /// the files to commit whole now, when it started a new segment (those with records in
    /// the older ones).
    func reserveWrite(ino: Int64, offset: Int64, count: Int) throws -> (Reservation, lagging: [Int64]) {
        try lock.withLock {
            if let failure { throw failure }
            var lagging: [Int64] = []
            if segments[segments.count - 1].size > segmentLimit {
                segments.append(try startSegment(number: segments[segments.count - 1].number + 1))
                lagging = segments.dropLast().reduce(into: Set<Int64>()) { $0.formUnion($1.latest.keys) }.sorted()
            }
            return (reserveLocked(.write, ino: ino, offset: offset, count: count), lagging)
        }
    }

    /// The next sequence number and a place in the current segment for a record of `kind`
    /// with `count` bytes, which leaves `ino` unsettled until it is settled through it.
    private func reserveLocked(_ kind: Kind, ino: Int64, offset: Int64, count: Int) -> Reservation {
        sequence += 1
        unsettled[ino] = sequence
        let current = segments[segments.count - 1]
        current.latest[ino] = sequence
        let reservation = Reservation(segment: current, at: current.size,
                                      header: header(kind, ino: ino, sequence: sequence, offset: offset, count: count), sequence: sequence)
        current.size += Self.recordSize(count)
        current.writing += 1
        return reservation
    }

    /// Writes a reserved record: header, bytes, padding, and last the trailer — a record
    /// whose trailer is there was written whole (a process killed in the middle of a write
    /// call leaves a prefix of it). Any thread: every record has a place of its own.
    func write(_ reservation: Reservation, bytes: UnsafeRawBufferPointer) {
        let tail = [UInt8](repeating: 0, count: Self.padding(bytes.count))
            + withUnsafeBytes(of: reservation.sequence.littleEndian) { Array($0) }
        let written = reservation.header.withUnsafeBytes { header in
            tail.withUnsafeBytes { tail in Self.pwrite(reservation.segment.descriptor, [header, bytes, tail], at: reservation.at) }
        }
        lock.withLock {
            reservation.segment.writing -= 1
            if !written && failure == nil { failure = Self.failure("write to segment-\(reservation.segment.number)") }
            closeIfDone(reservation.segment)
            trimLocked()
        }
    }

    /// Times set on `ino` while it has buffered bytes (nil: unchanged), written before this
    /// returns; returns its sequence number, which the file's buffers carry so that their
    /// commit settles it too.
    func recordTimes(ino: Int64, atimeNs: Int64?, mtimeNs: Int64?) throws -> UInt64 {
        let reservation = try lock.withLock {
            if let failure { throw failure }
            return reserveLocked(.times, ino: ino, offset: 0, count: 16)
        }
        let body = [atimeNs, mtimeNs].flatMap { time in withUnsafeBytes(of: (time ?? Int64.min).littleEndian) { Array($0) } }
        body.withUnsafeBytes { write(reservation, bytes: $0) }
        if let failure = lock.withLock({ failure }) { throw failure }
        return reservation.sequence
    }

    /// Whether `ino` has records not settled yet.
    func isUnsettled(_ ino: Int64) -> Bool { lock.withLock { unsettled[ino] != nil } }

    /// Every write to each file up to its sequence number is committed (nil: every one so
    /// far — the file is gone).
    func settle(_ files: some Sequence<(ino: Int64, through: UInt64?)>) throws {
        try lock.withLock {
            var markers: [UInt8] = []
            for (ino, through) in files {
                guard let latest = unsettled[ino] else { continue }
                let settled = min(through ?? latest, latest)
                if settled >= latest { unsettled[ino] = nil }
                for segment in segments where (segment.latest[ino] ?? .max) <= settled { segment.latest[ino] = nil }
                markers += header(.settled, ino: ino, sequence: settled, offset: 0, count: 0)
            }
            if markers.isEmpty { return }
            if unsettled.isEmpty && segments.allSatisfy({ $0.writing == 0 }) {
                // Nothing to replay any more: every segment goes, the current starts again.
                while segments.count > 1 { drop(segments.removeFirst()) }
                let current = segments[0]
                guard ftruncate(current.descriptor, off_t(Self.segmentHeaderSize)) == 0 else { throw Self.failure("truncate") }
                current.size = Self.segmentHeaderSize
                return
            }
            let current = segments[segments.count - 1]
            guard markers.withUnsafeBytes({ Self.pwrite(current.descriptor, [$0], at: current.size) }) else {
                throw Self.failure("append to segment-\(current.number)")
            }
            current.size += markers.count
            trimLocked()
        }
    }

    /// Removes the journal (a clean end, or one that failed).
    func remove() {
        lock.withLock {
            for segment in segments { drop(segment) }
            segments = []
            for name in replayed { unlink(directory + "/" + name) }
            replayed = []
        }
        rmdir(directory)
    }

    /// Drops the oldest segments once nothing in them is unsettled or being written.
    private func trimLocked() {
        while segments.count > 1 && segments[0].latest.isEmpty && segments[0].writing == 0 { drop(segments.removeFirst()) }
    }

    private func drop(_ segment: Segment) {
        unlink(directory + "/segment-\(segment.number)")
        segment.dropped = true
        closeIfDone(segment)
    }

    private func closeIfDone(_ segment: Segment) {
        if segment.dropped && segment.writing == 0 { Glibc.close(segment.descriptor) }
    }

    // MARK: replay

    /// What `directory`'s segments hold that was never settled, in the order it was done,
    /// and the highest sequence number seen; nothing when the segments were written before
    /// the host last booted.
    static func pending(in directory: String) -> (entries: [Entry], sequence: UInt64) {
        var entries: [(sequence: UInt64, entry: Entry)] = []
        var highest: UInt64 = 0
        var settledThrough: [Int64: UInt64] = [:]
        for name in segmentNames(in: directory) {
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else { continue }
            let bytes = [UInt8](data)
            guard bytes.count >= segmentHeaderSize, Array(bytes[0..<8]) == magic,
                  Array(bytes[8..<44]) == bootField else { continue }
            let nonce = load(bytes, 44, UInt64.self)
            var at = segmentHeaderSize
            while at + recordHeaderSize <= bytes.count {
                guard let record = record(bytes, at: at, nonce: nonce) else {
                    at += 8  // not written (yet): the next record may be further on
                    continue
                }
                highest = max(highest, record.sequence)
                switch record.kind {
                case .write, .times:
                    let end = at + recordSize(record.length)
                    guard end <= bytes.count else { at = bytes.count; continue }
                    // Without its trailer, the write was being copied when the daemon died
                    // (never acknowledged): skipped.
                    if load(bytes, end - trailerSize, UInt64.self) == record.sequence {
                        let start = at + recordHeaderSize
                        if record.kind == .write {
                            entries.append((record.sequence, .write(Write(ino: record.ino, offset: record.offset, bytes: Array(bytes[start..<(start + record.length)])))))
                        } else if record.length == 16 {
                            let (atime, mtime) = (load(bytes, start, Int64.self), load(bytes, start + 8, Int64.self))
                            entries.append((record.sequence, .times(ino: record.ino, atimeNs: atime == .min ? nil : atime, mtimeNs: mtime == .min ? nil : mtime)))
                        }
                    }
                    at = end
                case .settled:
                    settledThrough[record.ino] = max(settledThrough[record.ino] ?? 0, record.sequence)
                    at += recordHeaderSize
                }
            }
        }
        let unsettled = entries.filter { $0.sequence > (settledThrough[$0.entry.ino] ?? 0) }.sorted { $0.sequence < $1.sequence }
        return (unsettled.map(\.entry), highest)
    }

    /// The header at `at`, if one of this segment's is there.
    private static func record(_ bytes: [UInt8], at: Int, nonce: UInt64) -> (kind: Kind, length: Int, sequence: UInt64, ino: Int64, offset: Int64)? {
        guard let kind = Kind(rawValue: load(bytes, at, UInt32.self)), load(bytes, at + 32, UInt64.self) == nonce else { return nil }
        var checked = Array(bytes[at..<(at + recordHeaderSize)])
        checked.replaceSubrange(40..<44, with: [0, 0, 0, 0])
        guard CRC32C.checksum(checked) == load(bytes, at + 40, UInt32.self) else { return nil }
        return (kind, Int(load(bytes, at + 4, UInt32.self)), load(bytes, at + 8, UInt64.self),
                load(bytes, at + 16, Int64.self), load(bytes, at + 24, Int64.self))
    }

    private static func load<T: FixedWidthInteger>(_ bytes: [UInt8], _ offset: Int, _: T.Type) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    // MARK: records and segments

    static func padding(_ count: Int) -> Int { (8 - count % 8) % 8 }
    static func recordSize(_ count: Int) -> Int { recordHeaderSize + count + padding(count) + trailerSize }

    private static func segmentNames(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (Int, String)? in
            guard name.hasPrefix("segment-"), let n = Int(name.dropFirst(8)) else { return nil }
            return (n, name)
        }.sorted { $0.0 < $1.0 }.map(\.1)
    }

    private func startSegment(number: Int) throws -> Segment {
        let path = directory + "/segment-\(number)"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Self.failure("create \(path)") }
        var header = Self.magic + Self.bootField
        header += withUnsafeBytes(of: nonce.littleEndian) { Array($0) }
        header += [UInt8](repeating: 0, count: Self.segmentHeaderSize - header.count)
        guard header.withUnsafeBytes({ Self.pwrite(descriptor, [$0], at: 0) }) else {
            Glibc.close(descriptor)
            throw Self.failure("write \(path)")
        }
        return Segment(number: number, descriptor: descriptor, size: header.count)
    }

    private func header(_ kind: Kind, ino: Int64, sequence: UInt64, offset: Int64, count: Int) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: Self.recordHeaderSize)
        header.withUnsafeMutableBytes { h in
            h.storeBytes(of: kind.rawValue.littleEndian, toByteOffset: 0, as: UInt32.self)
            h.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 4, as: UInt32.self)
            h.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt64.self)
            h.storeBytes(of: ino.littleEndian, toByteOffset: 16, as: Int64.self)
            h.storeBytes(of: offset.littleEndian, toByteOffset: 24, as: Int64.self)
            h.storeBytes(of: nonce.littleEndian, toByteOffset: 32, as: UInt64.self)
        }
        let crc = CRC32C.checksum(header)
        header.withUnsafeMutableBytes { $0.storeBytes(of: crc.littleEndian, toByteOffset: 40, as: UInt32.self) }
        return header
    }

    /// Writes `parts` one after another at `at`, in one call, whole (retrying short
    /// writes); false on an error.
    private static func pwrite(_ descriptor: Int32, _ parts: [UnsafeRawBufferPointer], at: Int) -> Bool {
        let total = parts.reduce(0) { $0 + $1.count }
        var done = 0
        while done < total {
            var vectors: [iovec] = []
            var start = 0
            for part in parts {
                if done < start + part.count && part.count > 0 {
                    let skip = max(0, done - start)
                    vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: part.baseAddress! + skip), iov_len: part.count - skip))
                }
                start += part.count
            }
            let n = pwritev(descriptor, vectors, Int32(vectors.count), off_t(at + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            done += n
        }
        return true
    }

    /// This boot's id as a segment header holds it: 36 bytes, zero-padded.
    private static let bootField: [UInt8] = {
        let id = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
        let bytes = Array(id.trimmingCharacters(in: .whitespacesAndNewlines).utf8.prefix(36))
        return bytes + [UInt8](repeating: 0, count: 36 - bytes.count)
    }()

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private static func failure(_ what: String) -> Failure {
        Failure(description: "write journal: cannot \(what): \(String(cString: strerror(errno)))")
    }
}
