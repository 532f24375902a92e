import Foundation
import Metadata

/// Commits concurrent callers' cluster-database changes together: whoever arrives while
/// no commit runs becomes the leader and commits everything queued so far in one
/// transaction (one fsync); the others wait for that result. Under load, N creators pay
/// for about one fsync instead of N. A failed batch is retried change set by change set,
/// so one bad record fails only its own caller.
final class GroupCommit: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [(id: Int, changes: [ClusterChange])] = []
    private var results: [Int: (any Error)?] = [:]
    private var committing = false
    private var nextID = 0
    private let database: any ClusterStore

    init(database: any ClusterStore) { self.database = database }

    func commit(_ changes: [ClusterChange]) throws {
        condition.lock()
        let id = nextID
        nextID += 1
        queue.append((id, changes))
        while true {
            if let result = results.removeValue(forKey: id) {
                condition.unlock()
                if let result { throw result }
                return
            }
            if !committing {
                committing = true
                let batch = queue
                queue = []
                condition.unlock()
                let outcome = run(batch)
                condition.lock()
                for (id, error) in outcome { results[id] = error }
                committing = false
                condition.broadcast()
                continue
            }
            condition.wait()
        }
    }

    private func run(_ batch: [(id: Int, changes: [ClusterChange])]) -> [(Int, (any Error)?)] {
        do {
            try database.commit(batch.flatMap(\.changes))
            return batch.map { ($0.id, nil) }
        } catch {
            if batch.count == 1 { return [(batch[0].id, error)] }
            return batch.map { item in
                do { try database.commit(item.changes); return (item.id, nil) } catch { return (item.id, error) }
            }
        }
    }
}
