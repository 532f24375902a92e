import Foundation
import Storage
import Synchronization

/// One movement budget for the whole node, shared by every mover worker: a token bucket
/// whose rate the `RebuildBudget` sets from the clients' latency, window by window (the
/// admin's `moverBytesPerSecond`, if any, is its ceiling), so a rebuild goes as fast as
/// clients allow. With `adaptive` off, the rate is the fixed one (nil: unlimited).
final class Throttle: Sendable {
    static let windowNanoseconds: Int64 = 1_000_000_000

    private struct State {
        var budget: RebuildBudget
        var tokens: Double
        var last: Int64
        /// When the client latency's windows were last fed to the budget.
        var fed: Int64
    }

    private let fixed: Double?
    private let adaptive: Bool
    private let latency: ClientLatency
    private let state: Mutex<State>

    init(bytesPerSecond: Int64?, adaptive: Bool, latency: ClientLatency) {
        fixed = bytesPerSecond.map { Double(max(1, $0)) }
        self.adaptive = adaptive
        self.latency = latency
        let budget = RebuildBudget(ceiling: fixed)
        let now = Monotonic.nanoseconds()
        state = Mutex(State(budget: budget, tokens: (adaptive ? budget.rate : fixed ?? 0) / 10, last: now, fed: now))
    }

    /// The rate now (nil: unlimited).
    var bytesPerSecond: Double? {
        adaptive ? state.withLock { $0.budget.rate } : fixed
    }

    /// The budget's state (for status and tests).
    var budget: RebuildBudget { state.withLock { $0.budget } }

    /// Blocks until `bytes` may be moved. A request larger than one second's budget waits
    /// proportionally (the bucket goes negative), so large shards are not starved.
    func acquire(_ bytes: Int) {
        let wait: Double = state.withLock { s in
            let now = Monotonic.nanoseconds()
            if adaptive {
                latency.markMovement(now: now)
                if now - s.fed >= Self.windowNanoseconds { feed(&s, now: now) }
            }
            guard let rate = adaptive ? s.budget.rate : fixed else { return 0 }
            s.tokens = min(rate, s.tokens + Double(now - s.last) * 1e-9 * rate)  // at most one second of burst
            s.last = now
            s.tokens -= Double(bytes)
            return s.tokens < 0 ? -s.tokens / rate : 0
        }
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
    }

    /// Gives back what an `acquire` took but did not move (a shard already in place).
    func refund(_ bytes: Int) {
        state.withLock { s in
            s.tokens += Double(bytes)
        }
    }

    /// Gives the budget the client latency's windows closed since the last time.
    private func feed(_ s: inout State, now: Int64) {
        for w in latency.takeWindows(now: now) {
            s.budget.window(samples: w.samples, operations: w.operations, moving: w.moving)
        }
        s.fed = now
    }
}
