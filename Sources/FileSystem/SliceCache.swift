import Metadata
import Synchronization

/// The slice lists of recently read chunks, so a read does not query SQLite for them each
/// time: fetching a chunk's slices cost about 130 k instructions of the 185 k of a 4 KiB
/// random read (borrowing a pooled reader and decoding rows), measured under callgrind.
///
/// Kept exact by the filesystem, not by SQLite: every change of a file's slices — a
/// commit of written bytes, a compaction, a truncation, a punched hole, deleting the
/// file — goes through `VolumeFileSystem`, which calls `invalidate` for the file under its
/// lock, after the change committed and before the bytes it committed leave `inflight`.
/// So a read that took its pending bytes under the lock after that finds the entry gone;
/// one that took them before still overlays the committed bytes from `inflight`, whatever
/// slice list it gets.
///
/// A reader may fetch a list, then a change commit and invalidate, then the reader insert
/// what it fetched. So an insert carries the `Ticket` the reader took before fetching, and
/// is refused if the file was invalidated since (or the cache started over).
final class SliceCache: Sendable {
    struct Key: Hashable { var ino: Int64; var chunk: Int64 }
    struct Ticket: Equatable { var epoch: UInt64; var changes: UInt64 }

    private struct State {
        var entries: [Key: [SliceRecord]] = [:]
        var chunks: [Int64: Set<Int64>] = [:]
        /// Invalidations per file since the cache last started over.
        var changes: [Int64: UInt64] = [:]
        /// Bumped when the cache starts over, which forgets `changes` too.
        var epoch: UInt64 = 0

        func ticket(_ ino: Int64) -> Ticket { Ticket(epoch: epoch, changes: changes[ino] ?? 0) }

        mutating func startOver() {
            entries.removeAll(keepingCapacity: true)
            chunks.removeAll(keepingCapacity: true)
            changes.removeAll(keepingCapacity: true)
            epoch &+= 1
        }
    }
    private let state = Mutex(State())
    /// Chunks (and files with invalidations) kept at most; past it the cache starts over.
    let capacity: Int

    init(capacity: Int = 65_536) { self.capacity = capacity }

    /// Take before fetching what may be inserted.
    func ticket(_ ino: Int64) -> Ticket { state.withLock { $0.ticket(ino) } }

    func get(ino: Int64, chunk: Int64) -> [SliceRecord]? { state.withLock { $0.entries[Key(ino: ino, chunk: chunk)] } }

    /// Keeps `slices` for the chunk unless the file changed since `ticket` was taken.
    func insert(_ slices: [SliceRecord], ino: Int64, chunk: Int64, ticket: Ticket) {
        state.withLock { s in
            guard s.ticket(ino) == ticket else { return }
            if s.entries.count >= capacity { s.startOver(); return }
            s.entries[Key(ino: ino, chunk: chunk)] = slices
            s.chunks[ino, default: []].insert(chunk)
        }
    }

    /// The slices of file `ino` changed (or the file is gone): its lists are dropped, and
    /// inserts fetched before now are refused.
    func invalidate(_ ino: Int64) {
        state.withLock { s in
            if let chunks = s.chunks.removeValue(forKey: ino) {
                for chunk in chunks { s.entries[Key(ino: ino, chunk: chunk)] = nil }
            }
            if s.changes.count >= capacity { s.startOver(); return }
            s.changes[ino, default: 0] &+= 1
        }
    }
}
