import Testing
@testable import Engine

/// The rebuild budget: the mover's rate follows the clients' p99 against its baseline.
@Suite struct RebuildBudgetTests {
    @Test func idleWindowsSetTheBaselineAndMovementIsHeldToIt() {
        var budget = RebuildBudget(floor: 8e6, ceiling: nil, start: 64e6)
        budget.window(p99: 0.004, operations: 100, moving: false)
        #expect(budget.baseline == 0.004)
        #expect(budget.rate == 64e6)  // idle windows do not change the rate
        // Clients fine during movement: the rate rises (×1.25 + 8 MB/s).
        #expect(budget.window(p99: 0.005, operations: 100, moving: true) == 64e6 * 1.25 + 8e6)
        // Past 1.5× the baseline: cut (×0.6).
        let before = budget.rate
        #expect(budget.window(p99: 0.0061, operations: 100, moving: true) == before * 0.6)
        // A smoothed baseline: one odd idle window moves it 30 % of the way.
        budget.window(p99: 0.014, operations: 100, moving: false)
        #expect(abs(budget.baseline! - (0.7 * 0.004 + 0.3 * 0.014)) < 1e-12)
    }

    @Test func theRateStaysBetweenFloorAndCeiling() {
        var budget = RebuildBudget(floor: 8e6, ceiling: 100e6, start: 64e6)
        budget.window(p99: 0.001, operations: 50, moving: false)
        for _ in 0..<20 { budget.window(p99: 0.010, operations: 50, moving: true) }
        #expect(budget.rate == 8e6)
        for _ in 0..<20 { budget.window(p99: 0.001, operations: 50, moving: true) }
        #expect(budget.rate == 100e6)
        // An admin's limit below the floor is the limit.
        let slow = RebuildBudget(floor: 8e6, ceiling: 1e6)
        #expect(slow.rate == 1e6 && slow.floor == 1e6)
    }

    @Test func withoutClientsTheMoverSpeedsUp() {
        var budget = RebuildBudget(start: 64e6)
        budget.window(p99: nil, operations: 0, moving: true)
        #expect(budget.rate > 64e6)
        // Too few operations to say anything: as if none.
        let after = budget.rate
        budget.window(p99: 5.0, operations: RebuildBudget.minimumOperations - 1, moving: true)
        #expect(budget.rate > after)
    }

    @Test func clientsThatStartedDuringMovementUseTheLowestP99Seen() {
        var budget = RebuildBudget(start: 64e6)
        budget.window(p99: 0.008, operations: 40, moving: true)
        #expect(budget.baseline == 0.008)
        budget.window(p99: 0.004, operations: 40, moving: true)
        #expect(budget.baseline == 0.004)
        let before = budget.rate
        budget.window(p99: 0.007, operations: 40, moving: true)
        #expect(budget.rate == before * 0.6)
        // Then a window without movement replaces it.
        budget.window(p99: 0.003, operations: 40, moving: false)
        #expect(budget.baseline == 0.003)
    }

    @Test func p99() {
        #expect(RebuildBudget.p99([]) == nil)
        #expect(RebuildBudget.p99([3]) == 3)
        let values = (1...200).map(Double.init).shuffled()
        #expect(RebuildBudget.p99(values) == 199)
    }
}
