import Dispatch
import Foundation
import Synchronization

/// Proof that some work never waits for `DispatchQueue.global()`.
///
/// The global queue has about one thread per CPU, shared with Swift concurrency; work that a
/// blocked caller waits for must not be queued there, or callers holding those threads hang
/// (see "Threads" in docs/storage.md).
public enum GlobalQueueHold {
    /// Spinners queued per hold: far more than the pool's threads.
    static let spinners = 128

    /// Runs `work` on a thread of its own while yielding spinners hold every thread of the
    /// global queue, and returns its result; nil when it did not finish within `timeout`
    /// seconds (it waited for the global queue).
    ///
    /// The spinners stop as soon as `work` returns or the timeout passes.
    public static func run<T: Sendable>(timeout seconds: Int = 60, _ work: @escaping @Sendable () -> T) -> T? {
        let stop = Atomic<Bool>(false), spinning = Atomic<Int>(0)
        // Not waited for: a spinner that starts late sees `stop` and returns.
        defer { stop.store(true, ordering: .relaxed) }
        // The pool is not one thread per CPU on Linux: libdispatch adds threads while others
        // block, and tests running in parallel free threads at any time. So many more spinners
        // are queued than can start: those that do hold the pool, those still queued stand in
        // front of anything queued later and take every thread that frees up.
        for _ in 0..<Self.spinners {
            DispatchQueue.global().async {
                spinning.add(1, ordering: .relaxed)
                while !stop.load(ordering: .relaxed) { sched_yield() }  // busy for the pool, not for the CPUs
            }
        }
        // Until half a second passes with no spinner starting: the pool is full.
        var started = -1
        while spinning.load(ordering: .relaxed) != started {
            started = spinning.load(ordering: .relaxed)
            usleep(500_000)
        }
        let done = DispatchSemaphore(value: 0)
        let outcome = Mutex<T?>(nil)
        Thread {
            let value = work()
            outcome.withLock { $0 = value }
            done.signal()
        }.start()
        guard done.wait(timeout: .now() + .seconds(seconds)) == .success else { return nil }
        return outcome.withLock { $0 }
    }
}
