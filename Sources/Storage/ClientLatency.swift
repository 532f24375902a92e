import Synchronization

/// How long clients' object reads and writes take, in windows of about a second, each
/// marked with whether the mover ran during it (`markMovement`). Windows roll over by the
/// clock as operations arrive, so a window never spans minutes of other work; the closed
/// ones wait for whoever watches them (the engine's rebuild budget), the last
/// `keptWindows` of them at most. Bounded: past `capacity` samples in one window, every
/// other later one is kept, so a busy window costs a fixed amount of memory and its high
/// quantiles stay representative.
public final class ClientLatency: Sendable {
    /// One window's samples (in no order) and how many operations they stand for.
    public struct Window: Sendable, Equatable {
        public var samples: [Double] = []
        public var operations = 0
        /// Whether the mover ran during it.
        public var moving = false
        var start: Int64
    }

    public static let capacity = 2048
    public static let keptWindows = 64
    public let windowNanoseconds: Int64
    private let state: Mutex<(current: Window, closed: [Window])>

    public init(windowNanoseconds: Int64 = 1_000_000_000) {
        self.windowNanoseconds = windowNanoseconds
        state = Mutex((Window(start: Monotonic.nanoseconds()), []))
    }

    /// Records one operation that began at `start` (`Monotonic.nanoseconds()`).
    public func record(since start: Int64) {
        let now = Monotonic.nanoseconds()
        record(seconds: Double(now - start) * 1e-9, now: now)
    }

    /// Records one operation of `seconds`.
    public func record(seconds: Double, now: Int64 = Monotonic.nanoseconds()) {
        state.withLock { s in
            roll(&s, now: now)
            s.current.operations += 1
            if s.current.samples.count < Self.capacity {
                s.current.samples.append(seconds)
            } else if s.current.operations % 2 == 0 {
                s.current.samples[s.current.operations / 2 % Self.capacity] = seconds
            }
        }
    }

    /// The mover moves bytes now: the current window is one of movement.
    public func markMovement(now: Int64 = Monotonic.nanoseconds()) {
        state.withLock { s in
            roll(&s, now: now)
            s.current.moving = true
        }
    }

    /// The windows closed since the last call, oldest first.
    public func takeWindows(now: Int64 = Monotonic.nanoseconds()) -> [Window] {
        state.withLock { s in
            roll(&s, now: now)
            defer { s.closed = [] }
            return s.closed
        }
    }

    private func roll(_ s: inout (current: Window, closed: [Window]), now: Int64) {
        guard now - s.current.start >= windowNanoseconds else { return }
        if s.current.operations > 0 || s.current.moving {
            s.closed.append(s.current)
            if s.closed.count > Self.keptWindows { s.closed.removeFirst(s.closed.count - Self.keptWindows) }
        }
        // The next window starts where the clock is; quiet seconds in between leave none.
        s.current = Window(start: now)
    }
}
