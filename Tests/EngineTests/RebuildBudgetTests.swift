import Testing
@testable import Engine

/// The rebuild budget: the mover's rate follows the clients' p99 against its baseline.
@Suite struct RebuildBudgetTests {
    /// Feeds `windows` windows of `samples` each while moving, and returns the rate after.
    @discardableResult
    static func moving(_ budget: inout RebuildBudget, _ samples: [Double]) -> Double {
        budget.window(samples: samples, operations: samples.count, moving: true)
    }

    /// A pool of `RebuildBudget.decisionOperations` operations of `fast` seconds, `slow` of
    /// them replaced by `stall` seconds.
    static func pool(fast: Double, slow: Int = 0, stall: Double = 0) -> [Double] {
        Array(repeating: fast, count: RebuildBudget.decisionOperations - slow) + Array(repeating: stall, count: slow)
    }

    @Test func theBaselineIsTheP99OfTheIdleWindowsPooled() {
        var budget = RebuildBudget(floor: 8e6, ceiling: nil, start: 64e6)
        #expect(budget.baseline == nil)
        // 20 quiet windows of 50 operations, and a stall in every fourth: 5 stalls in 1,000
        // operations are below the p99, so the baseline is the quiet operations' latency.
        for i in 0..<20 {
            budget.window(samples: Array(repeating: 0.004, count: 49) + [i % 4 == 0 ? 0.040 : 0.004], operations: 50, moving: false)
        }
        #expect(budget.baseline == 0.004)
        #expect(budget.rate == 64e6)  // idle windows do not change the rate
        // Stalls in 3 % of the operations: the p99 is a stall.
        for _ in 0..<10 { budget.window(samples: Array(repeating: 0.004, count: 47) + [0.04, 0.04, 0.04], operations: 50, moving: false) }
        #expect(budget.baseline == 0.04)
        // Only the last `idleWindowsKept` windows count: quiet ones push the stalls out.
        for _ in 0..<RebuildBudget.idleWindowsKept { budget.window(samples: Array(repeating: 0.005, count: 50), operations: 50, moving: false) }
        #expect(budget.baseline == 0.005)
    }

    @Test func aPoolIsJudgedOnceAndOneStallDoesNotCut() {
        var budget = RebuildBudget(floor: 8e6, ceiling: nil, start: 64e6)
        budget.window(samples: Array(repeating: 0.004, count: 100), operations: 100, moving: false)
        // Windows add up to a pool; the rate holds until it is judged.
        let half = Self.pool(fast: 0.004)
        #expect(Self.moving(&budget, Array(half.prefix(60))) == 64e6)
        // Judged: one stall among 128 operations is not the p99, and the others are as fast
        // as without movement, so the rate leaps (×1.5 + 8 MB/s).
        #expect(Self.moving(&budget, Array(half.dropFirst(61)) + [0.5]) == 64e6 * 1.5 + 8e6)
        // Two stalls are: past 1.5× the baseline, the rate is cut (×0.6).
        let before = budget.rate
        #expect(Self.moving(&budget, Self.pool(fast: 0.004, slow: 2, stall: 0.0061)) == before * 0.6)
        // Slower, but within 1.5×: rises again, slowly (×1.25 + 8 MB/s)…
        #expect(Self.moving(&budget, Self.pool(fast: 0.0059)) == before * 0.6 * 1.25 + 8e6)
        // …and within 1.15×, fast again.
        let slowly = budget.rate
        #expect(Self.moving(&budget, Self.pool(fast: 0.0046)) == slowly * 1.5 + 8e6)
    }

    @Test func fewClientsAreJudgedAfterAFewWindows() {
        var budget = RebuildBudget(start: 64e6)
        budget.window(samples: Array(repeating: 0.01, count: 40), operations: 40, moving: false)
        // 10 operations a window: judged after `decisionWindows` windows, and all slow → cut.
        for _ in 1..<RebuildBudget.decisionWindows { Self.moving(&budget, Array(repeating: 0.05, count: 10)) }
        #expect(budget.rate == 64e6)
        #expect(Self.moving(&budget, Array(repeating: 0.05, count: 10)) == 64e6 * 0.6)
    }

    @Test func theRateStaysBetweenFloorAndCeiling() {
        var budget = RebuildBudget(floor: 8e6, ceiling: 100e6, start: 64e6)
        budget.window(samples: Array(repeating: 0.001, count: 50), operations: 50, moving: false)
        for _ in 0..<20 { Self.moving(&budget, Self.pool(fast: 0.010)) }
        #expect(budget.rate == 8e6)
        for _ in 0..<20 { Self.moving(&budget, Self.pool(fast: 0.001)) }
        #expect(budget.rate == 100e6)
        // An admin's limit below the floor is the limit.
        let slow = RebuildBudget(floor: 8e6, ceiling: 1e6)
        #expect(slow.rate == 1e6 && slow.floor == 1e6)
    }

    @Test func withoutClientsTheMoverSpeedsUp() {
        var budget = RebuildBudget(start: 64e6)
        for _ in 0..<RebuildBudget.decisionWindows { budget.window(samples: [], operations: 0, moving: true) }
        #expect(budget.rate > 64e6)
        // Too few operations to say anything: as if none.
        let after = budget.rate
        for _ in 0..<RebuildBudget.decisionWindows { budget.window(samples: [5.0], operations: 1, moving: true) }
        #expect(budget.rate > after)
    }

    @Test func clientsThatStartedDuringMovementUseTheLowestP99Seen() {
        var budget = RebuildBudget(start: 64e6)
        Self.moving(&budget, Self.pool(fast: 0.008))
        #expect(budget.baseline == 0.008)
        Self.moving(&budget, Self.pool(fast: 0.004))
        #expect(budget.baseline == 0.004)
        let before = budget.rate
        #expect(Self.moving(&budget, Self.pool(fast: 0.007)) == before * 0.6)
        // Then windows without movement replace it.
        budget.window(samples: Array(repeating: 0.003, count: 40), operations: 40, moving: false)
        #expect(budget.baseline == 0.003)
    }

    @Test func p99() {
        #expect(RebuildBudget.p99([]) == nil)
        #expect(RebuildBudget.p99([3]) == 3)
        let values = (1...200).map(Double.init).shuffled()
        #expect(RebuildBudget.p99(values) == 199)
    }
}
