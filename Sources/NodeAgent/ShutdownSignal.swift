import Synchronization

/// Tells long-lived calls that their server is stopping. A server's graceful shutdown waits
/// for every open call, and an `Exchange` stream stays open as long as its client lives:
/// the agent's shutdown signals it, and the call stops taking requests, answers those it
/// has and ends (its client then uses a new connection, or another holder).
final class ShutdownSignal: Sendable {
    private struct State {
        var signalled = false
        var next = 0
        var waiting: [Int: AsyncStream<Void>.Continuation] = [:]
    }
    private let state = Mutex(State())

    /// Signals every call, now and from now on.
    func signal() {
        let waiting = state.withLock { s -> [AsyncStream<Void>.Continuation] in
            s.signalled = true
            defer { s.waiting = [:] }
            return Array(s.waiting.values)
        }
        for continuation in waiting { continuation.finish() }
    }

    /// Returns when the signal comes (at once if it came before), or when the task is cancelled.
    func wait() async {
        let (stream, continuation) = AsyncStream<Void>.makeStream()
        let key = state.withLock { s -> Int? in
            if s.signalled { return nil }
            s.next += 1
            s.waiting[s.next] = continuation
            return s.next
        }
        guard let key else { return }
        for await _ in stream {}
        state.withLock { s in _ = s.waiting.removeValue(forKey: key) }
    }
}
