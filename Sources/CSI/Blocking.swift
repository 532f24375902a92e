import Dispatch

/// Runs blocking work (SQLite commits with fsync, shard I/O, mount(2)) on a thread of its
/// own instead of one of Swift concurrency's few cooperative threads, which a handful of
/// slow calls would otherwise pin and so stall every other RPC. At most
/// `BlockingSlots.limit` such calls run at once, node-wide; the others wait as suspended
/// tasks (no thread each), so a hung device cannot make the daemon spawn threads without end.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    await blockingSlots.acquire()
    defer { Task { await blockingSlots.release() } }
    return try await withCheckedThrowingContinuation { continuation in
        blockingQueue.async {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
    }
}

private let blockingQueue = DispatchQueue(label: "berth.csi.blocking", qos: .userInitiated, attributes: .concurrent)
private let blockingSlots = BlockingSlots(limit: BlockingSlots.limit)

/// A counting semaphore for tasks: `acquire` suspends the caller (in arrival order) while
/// every slot is taken.
actor BlockingSlots {
    /// Threads the daemon's blocking calls may hold at once.
    static let limit = 64
    private var free: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int) { free = limit }

    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { free += 1 } else { waiting.removeFirst().resume() }
    }
}
