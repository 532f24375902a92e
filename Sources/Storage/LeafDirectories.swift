import Dispatch
import Glibc
import Synchronization

/// The leaf directories of one device (`shards/xx/yy`) this process knows to exist with
/// their entry durable in the parent, one bit each; and the making of the others.
///
/// A shard may take its name in a leaf only once the leaf's own entry is on disk, so a
/// leaf not known here is made (or found) and its parent synced — once per leaf while the
/// process runs, on another thread while the shard's payload is written and synced, so a
/// put into a new leaf does not pay the directory work on its own path. (A leaf found
/// already there is synced too: whoever made it may have died before its parent sync.)
final class LeafDirectories: Sendable {
    static let count = 65_536
    private let durable = Mutex<[UInt64]>(Array(repeating: 0, count: count / 64))
    /// Where leaves are made. A serial queue of its own, so libdispatch's overcommitting
    /// pool runs it: a write waits for this work, and the shared global queue gets only as
    /// many threads as there are CPUs — two writers (or mover jobs) blocked there waiting
    /// for leaves queued behind them would never wake.
    private let queue = DispatchQueue(label: "berth.leaf-directories")

    func isDurable(_ leaf: Int) -> Bool { durable.withLock { $0[leaf >> 6] & (1 << UInt64(leaf & 63)) != 0 } }

    /// Forgets that leaf `leaf` exists (it was found gone): the next `prepare` makes it again.
    func forget(_ leaf: Int) { durable.withLock { $0[leaf >> 6] &= ~(1 << UInt64(leaf & 63)) } }

    /// Starts making leaf `leaf` at `path` durable; the promise says what failed, or nil
    /// once it is (the store turns a failure into its error). Returns nil when it already is.
    func prepare(_ leaf: Int, at path: String) -> Promise<ShardStore.Failure?>? {
        if isDurable(leaf) { return nil }
        let done = Promise<ShardStore.Failure?>()
        queue.async { [self] in
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                done.fulfill(ShardStore.Failure(operation: "mkdir \(path)", errno: errno))
                return
            }
            if let failure = ShardStore.syncDirectory(String(path[..<path.lastIndex(of: "/")!])) {
                done.fulfill(failure)
                return
            }
            durable.withLock { $0[leaf >> 6] |= 1 << UInt64(leaf & 63) }
            done.fulfill(nil)
        }
        return done
    }
}
