/// How fast the mover may go, adapted to what clients see: the rebuild budget.
///
/// Client reads and writes are timed (`ClientLatency`) and summed up per window of about a
/// second as their 99th percentile. Windows without movement keep a baseline (what clients
/// see when nothing moves); while the mover runs, a window whose p99 is over `target` ×
/// the baseline cuts the rate (× `cut`), any other raises it (× `raise` + `step`), between
/// `floor` and `ceiling` (an admin's fixed limit, if any). A window of the mover without
/// clients raises it too: nobody is there to protect. Without a baseline yet (clients that
/// started during a rebuild), the lowest p99 seen stands in for it.
///
/// Pure logic: the caller feeds it windows and applies the rate (`Throttle`).
public struct RebuildBudget: Sendable, Equatable {
    public var floor: Double
    public var ceiling: Double
    /// Bytes per second the mover may use now.
    public private(set) var rate: Double
    /// Client p99 seconds when nothing moves (nil until seen).
    public private(set) var baseline: Double?
    public var target = 1.5
    public var cut = 0.6
    public var raise = 1.25
    public var step: Double = 8e6
    /// Fewer operations than this in a window say too little about its p99.
    public static let minimumOperations = 8

    /// Whether `baseline` comes from windows without movement (else: the lowest p99 seen).
    private var idleBaseline = false

    public init(floor: Double = 8e6, ceiling: Double? = nil, start: Double = 64e6) {
        let top = max(1, ceiling ?? 4e9)
        self.floor = min(floor, top)
        self.ceiling = top
        rate = min(max(start, self.floor), top)
    }

    /// One window's client latencies (`p99` seconds over `operations` operations; nil p99:
    /// no operations) while the mover did or did not run. Returns the new rate.
    @discardableResult
    public mutating func window(p99: Double?, operations: Int, moving: Bool) -> Double {
        let measured = operations >= Self.minimumOperations ? p99 : nil
        guard moving else {
            // Smoothed, so one odd idle window does not move the bar far.
            if let measured {
                baseline = idleBaseline ? baseline.map { 0.7 * $0 + 0.3 * measured } ?? measured : measured
                idleBaseline = true
            }
            return rate
        }
        guard let measured else {
            rate = min(ceiling, rate * raise + step)
            return rate
        }
        if !idleBaseline { baseline = min(baseline ?? measured, measured) }
        if measured > target * (baseline ?? measured) {
            rate = max(floor, rate * cut)
        } else {
            rate = min(ceiling, rate * raise + step)
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
