/// How fast the mover may go, adapted to what clients see: the rebuild budget.
///
/// Client reads and writes are timed (`ClientLatency`) in windows of about a second, each
/// marked with whether the mover ran. The **baseline** is the p99 over the samples of the
/// last `idleWindowsKept` windows without movement pooled together: a span long enough to
/// hold the stalls a disk has whatever moves (an ext4 journal commit every few seconds),
/// so they are not read as harm the movement does. While the mover runs, windows are
/// pooled until they hold `decisionOperations` operations (or `decisionWindows` windows
/// passed); then the pool's p99 over `target` × the baseline cuts the rate (× `cut`), one
/// within `clear` × the baseline (clients see no difference) raises it fast (× `leap` +
/// `step`), any other slowly (× `raise` + `step`), between `floor` and `ceiling` (an admin's
/// fixed limit, if any). A pool without enough clients leaps too: nobody is there to protect.
/// One decision per pool, so a slow operation counts once, not once per window that still
/// remembers it; and a pool's p99 over 128 operations is its second slowest, so one stall
/// alone (which idle windows have too, if rarer than 1 in 100) does not cut. Without idle samples yet (clients that started during a rebuild),
/// the lowest p99 of a pool stands in for the baseline.
///
/// Pure logic: the caller feeds it windows and applies the rate (`Throttle`).
public struct RebuildBudget: Sendable, Equatable {
    public var floor: Double
    public var ceiling: Double
    /// Bytes per second the mover may use now.
    public private(set) var rate: Double
    public var target = 1.5
    public var clear = 1.15
    public var cut = 0.6
    public var raise = 1.25
    public var leap = 1.5
    public var step: Double = 8e6
    /// Fewer operations than this in a pool say too little about its p99.
    public static let minimumOperations = 8
    /// Windows without movement whose samples make the baseline.
    public static let idleWindowsKept = 30
    /// Idle samples needed before their p99 is the baseline.
    public static let minimumIdleSamples = 32
    /// A pool of movement windows is judged once it holds this many operations…
    public static let decisionOperations = 128
    /// …or this many windows passed.
    public static let decisionWindows = 4

    /// The last idle windows' samples, oldest first.
    private var idle: [[Double]] = []
    /// The lowest p99 of a movement pool (the stand-in baseline).
    private var lowestMoving: Double?
    private var pool: [Double] = []
    private var poolOperations = 0
    private var poolWindows = 0

    public init(floor: Double = 8e6, ceiling: Double? = nil, start: Double = 128e6) {
        let top = max(1, ceiling ?? 4e9)
        self.floor = min(floor, top)
        self.ceiling = top
        rate = min(max(start, self.floor), top)
    }

    /// Client p99 seconds when nothing moves (nil until seen).
    public var baseline: Double? { idleP99 ?? lowestMoving }

    /// The p99 of the idle windows' samples pooled (nil: too few of them).
    private var idleP99: Double? {
        let all = idle.flatMap { $0 }
        return all.count >= Self.minimumIdleSamples ? Self.p99(all) : nil
    }

    /// One window's client latencies (`samples` seconds, standing for `operations`
    /// operations) while the mover did or did not run. Returns the new rate.
    @discardableResult
    public mutating func window(samples: [Double], operations: Int, moving: Bool) -> Double {
        guard moving else {
            if operations > 0 && !samples.isEmpty {
                idle.append(samples)
                if idle.count > Self.idleWindowsKept { idle.removeFirst(idle.count - Self.idleWindowsKept) }
            }
            return rate
        }
        pool += samples
        poolOperations += operations
        poolWindows += 1
        guard poolOperations >= Self.decisionOperations || poolWindows >= Self.decisionWindows else { return rate }
        defer { pool = []; poolOperations = 0; poolWindows = 0 }
        guard poolOperations >= Self.minimumOperations, let measured = Self.p99(pool) else {
            rate = min(ceiling, rate * leap + step)
            return rate
        }
        let idleBar = idleP99
        if idleBar == nil { lowestMoving = min(lowestMoving ?? measured, measured) }
        let bar = idleBar ?? lowestMoving ?? measured
        if measured > target * bar {
            rate = max(floor, rate * cut)
        } else {
            rate = min(ceiling, rate * (measured <= clear * bar ? leap : raise) + step)
        }
        return rate
    }

    /// The 99th percentile of `samples` (nil if empty).
    public static func p99(_ samples: [Double]) -> Double? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int(0.99 * Double(sorted.count)))]
    }
}
