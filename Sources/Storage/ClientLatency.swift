import Synchronization

/// How long clients' object reads and writes take: the samples of the current window,
/// taken out by whoever watches them (the engine's rebuild budget). Bounded: past
/// `capacity` samples in one window, every other later one is kept, so a busy window costs
/// a fixed amount of memory and its high quantiles stay representative.
public final class ClientLatency: Sendable {
    public static let capacity = 8192
    private let samples = Mutex<(values: [Double], seen: Int)>(([], 0))

    public init() {}

    /// Records one operation that began at `start` (`Monotonic.nanoseconds()`).
    public func record(since start: Int64) { record(seconds: Double(Monotonic.nanoseconds() - start) * 1e-9) }

    /// Records one operation of `seconds`.
    public func record(seconds: Double) {
        samples.withLock { s in
            s.seen += 1
            if s.values.count < Self.capacity {
                s.values.append(seconds)
            } else if s.seen % 2 == 0 {
                s.values[s.seen / 2 % Self.capacity] = seconds
            }
        }
    }

    /// The samples since the last call (in no order), and how many operations they stand for.
    public func takeWindow() -> (samples: [Double], operations: Int) {
        samples.withLock { s in
            defer { s = ([], 0) }
            return (s.values, s.seen)
        }
    }
}
