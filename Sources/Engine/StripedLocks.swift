import Foundation

/// A fixed set of locks, one chosen per key by its hash: mutual exclusion per key without
/// a map that grows with the keys (two keys may share a lock, which only serializes them).
final class StripedLocks: Sendable {
    private let locks: [NSLock]

    init(count: Int = 64) { locks = (0..<count).map { _ in NSLock() } }

    func withLock<T, E: Error>(_ key: String, _ body: () throws(E) -> T) throws(E) -> T {
        var hasher = Hasher()
        hasher.combine(key)
        let lock = locks[Int(UInt(bitPattern: hasher.finalize()) % UInt(locks.count))]
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}
