import Dispatch

/// Runs blocking work (SQLite commits with fsync, shard I/O, mount(2)) on a thread of its
/// own instead of one of Swift concurrency's few cooperative threads, which a handful of
/// slow calls would otherwise pin and so stall every other RPC.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        blockingQueue.async {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
    }
}

private let blockingQueue = DispatchQueue(label: "berth.csi.blocking", qos: .userInitiated, attributes: .concurrent)
