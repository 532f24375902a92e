import Foundation

/// Puts in flight, counted by the map epoch whose placement they write to. The mover
/// waits until no put still writes where an older epoch placed it before it lists a PG's
/// objects: a shard landing on a position's old device after that listing would be
/// neither copied nor kept.
final class PutsInFlight: @unchecked Sendable {
    private let condition = NSCondition()
    private var counts: [UInt64: Int] = [:]
    private var waiters = 0

    /// Registers a put under the epoch `snapshot` reads, in one step with the reading: a
    /// waiter that checks after a new epoch is installed either sees this put or the put
    /// reads the new epoch.
    func begin<T>(_ snapshot: () -> (T, epoch: UInt64)) -> (T, epoch: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        let taken = snapshot()
        counts[taken.epoch, default: 0] += 1
        return taken
    }

    func end(epoch: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        guard let count = counts[epoch] else { preconditionFailure("a put ended that never began") }
        if count == 1 { counts.removeValue(forKey: epoch) } else { counts[epoch] = count - 1 }
        condition.broadcast()
    }

    /// Blocks until every put registered under an epoch before `epoch` has ended.
    func waitForPuts(before epoch: UInt64) {
        condition.lock()
        defer { condition.unlock() }
        waiters += 1
        defer { waiters -= 1 }
        while counts.keys.contains(where: { $0 < epoch }) { condition.wait() }
    }

    /// Callers blocked in `waitForPuts` now (for tests).
    var waiting: Int {
        condition.lock()
        defer { condition.unlock() }
        return waiters
    }

}
