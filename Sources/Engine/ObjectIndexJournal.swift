import Dispatch
import Metadata
import Synchronization

/// The engine's side of the cluster database's object index (`pg_object`): changes wait
/// here in the order they were made and are committed in batches, one commit for every
/// object written in a window, off the path of the writes themselves. Whoever reads the
/// index flushes first, so a reader never misses an object whose shards may exist.
///
/// Writers append an object's `add` before its row and shards exist, and its `remove`
/// after they are gone; the index is then always a superset of what devices hold. A crash
/// may lose appended changes: start-up rebuilds the index of every volume that was open
/// (`volume_in_use`) from its own database.
final class ObjectIndexJournal: Sendable {
    private let database: any ClusterStore
    private let pending = Mutex<(changes: [ObjectIndexChange], flushScheduled: Bool)>(([], false))
    /// Held while a batch commits, so batches commit in the order they were taken.
    private let committing = Mutex<Void>(())
    /// Runs the deferred flushes: a serial queue of its own (libdispatch's overcommitting
    /// pool), never blocked behind callers holding the global queue's threads.
    private let timers = DispatchQueue(label: "berth.object-index")
    /// How long a change may wait for the batch it rides in.
    private let window: DispatchTimeInterval

    init(database: any ClusterStore, window: DispatchTimeInterval = .milliseconds(50)) {
        self.database = database
        self.window = window
    }

    func add(_ object: IndexedObject) { append([.add(object)]) }

    func remove(ids: [String]) {
        if !ids.isEmpty { append(ids.map { .remove(id: $0) }) }
    }

    private func append(_ changes: [ObjectIndexChange]) {
        let schedule = pending.withLock { p in
            p.changes += changes
            defer { p.flushScheduled = true }
            return !p.flushScheduled
        }
        if schedule {
            timers.asyncAfter(deadline: .now() + window) { [weak self] in
                guard let self else { return }
                pending.withLock { $0.flushScheduled = false }
                try? flush()  // on failure the changes stay queued for the next flush
            }
        }
    }

    /// Commits every change appended before the call. A failed commit keeps the batch
    /// queued, ahead of later changes, and throws.
    func flush() throws(EngineError) {
        try committing.withLock { _ throws(EngineError) in
            let batch = pending.withLock { p in
                defer { p.changes = [] }
                return p.changes
            }
            do {
                try database.applyIndex(batch)
            } catch {
                pending.withLock { $0.changes = batch + $0.changes }
                throw EngineError.metadata("object index: \(error)")
            }
        }
    }

    /// Changes not yet committed (for tests).
    var pendingCount: Int { pending.withLock { $0.changes.count } }
}
