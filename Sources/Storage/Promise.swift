import Dispatch
import Synchronization

/// A value one thread provides once and any number of threads wait for: the block
/// checksums of a replicated object (computed once while every copy is being written), or
/// whether an object's row is durable (a shard waits for it before taking its final name).
public final class Promise<Value: Sendable>: Sendable {
    private let state = Mutex<Value?>(nil)
    private let ready = DispatchSemaphore(value: 0)

    public init() {}

    public func fulfill(_ value: Value) {
        state.withLock { $0 = value }
        ready.signal()
    }

    /// Waits for the value (any number of callers).
    public func value() -> Value {
        if let v = state.withLock({ $0 }) { return v }
        ready.wait()
        ready.signal()  // pass the wake-up on to the next waiter
        return state.withLock { $0 }!
    }
}
