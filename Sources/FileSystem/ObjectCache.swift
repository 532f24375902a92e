import Synchronization

/// Recently used objects' bytes, so reading a 4 MiB object in 128 KiB requests fetches it
/// once, within a budget of bytes. Objects are immutable and their ids unique across
/// volumes, so one cache can serve every mount of a node: `NodeMounts` gives all its mounts
/// one, and the node's memory for cached objects is one budget, not one per mount.
///
/// Least recently used goes first. Every operation is O(1) amortized: a use appends the
/// id with a new tick to a queue; eviction takes from the queue's head and skips entries a
/// later use made stale; the queue is rebuilt when stale entries outnumber live ones.
public final class ObjectCache: Sendable {
    /// A volume's own cache when none is shared (one file system alone, tests, berth-engine).
    public static let defaultBudgetBytes = 64 << 20

    private struct State {
        var entries: [String: (bytes: [UInt8], tick: UInt64)] = [:]
        var queue: [(id: String, tick: UInt64)] = []
        var head = 0
        var tick: UInt64 = 0
        var bytes = 0
    }

    private let state = Mutex(State())
    public let budgetBytes: Int

    public init(budgetBytes: Int) { self.budgetBytes = budgetBytes }

    func get(_ id: String) -> [UInt8]? {
        state.withLock { s in
            guard let entry = s.entries[id] else { return nil }
            Self.use(id, entry.bytes, &s)
            return entry.bytes
        }
    }

    func insert(_ id: String, _ value: [UInt8]) {
        state.withLock { s in
            if let old = s.entries[id] { s.bytes -= old.bytes.count }
            s.bytes += value.count
            Self.use(id, value, &s)
            while s.bytes > budgetBytes, s.head < s.queue.count {
                let (oldest, tick) = s.queue[s.head]
                s.head += 1
                guard let entry = s.entries[oldest], entry.tick == tick else { continue }  // used again since
                s.entries[oldest] = nil
                s.bytes -= entry.bytes.count
            }
            Self.compact(&s)
        }
    }

    func remove(_ id: String) {
        state.withLock { s in
            if let entry = s.entries.removeValue(forKey: id) { s.bytes -= entry.bytes.count }
            Self.compact(&s)
        }
    }

    /// Bytes cached now, and the length of the use queue (for tests).
    var cachedBytes: Int { state.withLock { $0.bytes } }
    var queueLength: Int { state.withLock { $0.queue.count } }

    private static func use(_ id: String, _ bytes: [UInt8], _ s: inout State) {
        s.tick &+= 1
        s.entries[id] = (bytes, s.tick)
        s.queue.append((id, s.tick))
    }

    /// Drops the queue's used and stale entries once they outnumber the live ones twice over.
    private static func compact(_ s: inout State) {
        guard s.queue.count > 2 * s.entries.count + 64 else { return }
        s.queue = s.queue[s.head...].filter { s.entries[$0.id]?.tick == $0.tick }
        s.head = 0
    }
}
