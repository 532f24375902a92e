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
final class InodeCache: Sendable {
    private struct State {
        var entries: [Int64: InodeRecord] = [:]
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

    func invalidate(_ inos: some Sequence<Int64>) {
        state.withLock { s in
            s.generation &+= 1
            for ino in inos { s.entries[ino] = nil }
        }
    }

    /// Watches the `inode` table through SQLite's change hooks.
    final class Invalidator: TransactionObserver, @unchecked Sendable {
        let cache: InodeCache
        /// Only touched on the writer's queue, inside one transaction at a time.
        private var changed: Set<Int64> = []

        init(_ cache: InodeCache) { self.cache = cache }

        func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { eventKind.tableName == "inode" }

        func databaseDidChange(with event: DatabaseEvent) {
            changed.insert(event.rowID)
            cache.invalidate(CollectionOfOne(event.rowID))
        }

        func databaseDidCommit(_ db: Database) {
            if !changed.isEmpty { cache.invalidate(changed) }
            changed.removeAll(keepingCapacity: true)
        }

        func databaseDidRollback(_ db: Database) {
            if !changed.isEmpty { cache.invalidate(changed) }
            changed.removeAll(keepingCapacity: true)
        }
    }
}
