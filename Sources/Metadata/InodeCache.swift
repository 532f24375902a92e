import GRDB
import Synchronization

/// Recently read inodes of one volume, so getattr, lookup, open and the data paths do not
/// each run a query. Kept exact by `Invalidator`, which SQLite tells about every change
/// to the `inode` table, whatever statement made it: a changed inode is dropped when the
/// change happens and again when it commits or rolls back.
///
/// A reader may fetch a row, then a writer change and commit it, then the reader insert
/// what it fetched. So every change bumps `generation`, and an insert is refused unless
/// the generation is still the one the reader saw before it fetched.
///
/// Beside each inode it may hold the bytes of the file's data (`Namespace.dataBytes`):
/// every change of a file's slices also changes its inode row (size, times) — except a
/// compaction, which keeps the chunks that hold data — so it is dropped with the inode.
final class InodeCache: Sendable {
    private struct State {
        var entries: [Int64: InodeRecord] = [:]
        var dataBytes: [Int64: Int64] = [:]
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())
    /// Entries kept at most; past it the cache starts over (simple, and rare).
    let capacity: Int

    init(capacity: Int = 200_000) { self.capacity = capacity }

    func get(_ ino: Int64) -> InodeRecord? { state.withLock { $0.entries[ino] } }

    var generation: UInt64 { state.withLock { $0.generation } }

    func insert(_ record: InodeRecord, ifGeneration generation: UInt64) {
        state.withLock { s in
            guard s.generation == generation else { return }
            if s.entries.count >= capacity { s.entries.removeAll(keepingCapacity: true) }
            s.entries[record.ino] = record
        }
    }

    func dataBytes(_ ino: Int64) -> Int64? { state.withLock { $0.dataBytes[ino] } }

    func insertDataBytes(_ bytes: Int64, of ino: Int64, ifGeneration generation: UInt64) {
        state.withLock { s in
            guard s.generation == generation else { return }
            if s.dataBytes.count >= capacity { s.dataBytes.removeAll(keepingCapacity: true) }
            s.dataBytes[ino] = bytes
        }
    }

    func invalidateAll() {
        state.withLock { s in
            s.generation &+= 1
            s.entries.removeAll(keepingCapacity: true)
            s.dataBytes.removeAll(keepingCapacity: true)
        }
    }

    func invalidate(_ inos: some Sequence<Int64>) {
        state.withLock { s in
            s.generation &+= 1
            for ino in inos {
                s.entries[ino] = nil
                s.dataBytes[ino] = nil
            }
        }
    }

    /// After a change: the changed inodes are dropped, and those the writer read back
    /// (their state now) installed.
    func install(_ fresh: [InodeRecord], replacing changed: some Sequence<Int64>) {
        state.withLock { s in
            s.generation &+= 1
            for ino in changed {
                s.entries[ino] = nil
                s.dataBytes[ino] = nil
            }
            if s.entries.count + fresh.count > capacity { s.entries.removeAll(keepingCapacity: true) }
            for record in fresh { s.entries[record.ino] = record }
        }
    }

    /// Watches the `inode` table through SQLite's change hooks, and hears from the code
    /// that changes it with statements stepped outside GRDB (`didChange`). A writer that calls
    /// `readBack` at the end of its change has the inodes it changed installed in the cache
    /// as they now stand (the parent a create touched, which the kernel asks for next, is
    /// then a cache hit); otherwise they are only dropped. Namespace changes share one
    /// open transaction (`VolumeDatabase.batched`) read through the same connection, so
    /// what a change leaves is what every namespace read sees from then on; a rolled-back
    /// transaction empties the cache.
    final class Invalidator: TransactionObserver, @unchecked Sendable {
        let cache: InodeCache
        /// Only touched on the writer's queue: inodes changed since the last read-back.
        private var changed: Set<Int64> = []
        /// Changed inodes whose state the writer knows (`know`): read back without a query.
        private var known: [Int64: InodeRecord] = [:]
        /// Changed inodes whose last change deleted them: read back as gone, without a query.
        private var deleted: Set<Int64> = []

        init(_ cache: InodeCache) { self.cache = cache }

        func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { eventKind.tableName == "inode" }

        func databaseDidChange(with event: DatabaseEvent) { didChange(event.rowID, deleted: event.kind == .delete) }

        /// Inode `ino` has just been changed (`deleted`: deleted), through GRDB (its update
        /// hook calls here) or by a statement stepped outside it (`InodeRows.executeChange`,
        /// whose caller calls here).
        func didChange(_ ino: Int64, deleted isDeleted: Bool) {
            changed.insert(ino)
            known[ino] = nil
            if isDeleted { deleted.insert(ino) } else if !deleted.isEmpty { deleted.remove(ino) }
            cache.invalidate(CollectionOfOne(ino))
        }

        /// The writer has just written `record` as it now stands: the read-back takes it
        /// instead of querying — unless a later statement changes the row again first.
        func know(_ record: InodeRecord) {
            if changed.contains(record.ino) { known[record.ino] = record }
        }

        /// Installs the inodes changed so far, as they now stand.
        func readBack(_ db: Database, fetch: (Database, Int64) throws -> InodeRecord?) throws {
            guard !changed.isEmpty else { return }
            let fresh = try changed.compactMap { ino -> InodeRecord? in
                if deleted.contains(ino) { return nil }
                return try known[ino] ?? fetch(db, ino)
            }
            cache.install(fresh, replacing: changed)
            forgetChanges()
        }

        private func forgetChanges() {
            changed.removeAll(keepingCapacity: true)
            known.removeAll(keepingCapacity: true)
            deleted.removeAll(keepingCapacity: true)
        }

        func databaseDidCommit(_ db: Database) {
            if !changed.isEmpty { cache.invalidate(changed) }
            forgetChanges()
        }

        func databaseDidRollback(_ db: Database) {
            cache.invalidateAll()
            forgetChanges()
        }
    }
}
