import Foundation
import Synchronization

/// One movement budget for the whole node: a token bucket of bytes per second shared by
/// every mover worker, so rebuilds cannot starve client I/O. `nil` rate = unlimited.
final class Throttle: Sendable {
    private let bytesPerSecond: Double?
    private let state: Mutex<(tokens: Double, last: ContinuousClock.Instant)>
    private let clock = ContinuousClock()

    init(bytesPerSecond: Int64?) {
        self.bytesPerSecond = bytesPerSecond.map { Double(max(1, $0)) }
        state = Mutex((tokens: Double(bytesPerSecond ?? 0) / 10, last: ContinuousClock().now))
    }

    /// Blocks until `bytes` may be moved. A request larger than one second's budget waits
    /// proportionally (the bucket goes negative), so large shards are not starved.
    func acquire(_ bytes: Int) {
        guard let rate = bytesPerSecond else { return }
        let wait: Double = state.withLock { s in
            let now = clock.now
            let elapsed = now - s.last
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            s.tokens = min(rate, s.tokens + seconds * rate)  // at most one second of burst
            s.last = now
            s.tokens -= Double(bytes)
            return s.tokens < 0 ? -s.tokens / rate : 0
        }
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
    }
}
