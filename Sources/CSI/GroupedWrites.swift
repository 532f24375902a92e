import Foundation

/// Group commit for a file rewritten after every change: a caller whose change is not yet
/// on disk either runs the write itself (covering every change made so far) or waits for
/// the write in progress and then, if that began before its change, the next one. N
/// concurrent changes cost one or two writes, not N.
final class GroupedWrites: @unchecked Sendable {
    private let condition = NSCondition()
    private var changeGeneration = 0
    private var savedGeneration = 0
    private var writing = false

    /// Returns once a `body` that started after this call has succeeded (or throws its error).
    func write(_ body: () throws -> Void) throws {
        condition.lock()
        defer { condition.unlock() }
        changeGeneration += 1
        let mine = changeGeneration
        while savedGeneration < mine {
            if writing {
                condition.wait()
                continue
            }
            writing = true
            let covering = changeGeneration
            condition.unlock()
            let result = Result { try body() }
            condition.lock()
            writing = false
            if case .success = result { savedGeneration = max(savedGeneration, covering) }
            condition.broadcast()
            try result.get()
        }
    }
}
