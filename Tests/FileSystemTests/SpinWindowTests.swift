import Testing
@testable import FileSystem

/// The leader's spin after a quick request (docs/filesystem.md, Serving requests): it grows
/// while requests come just after it gave up, shrinks when the mount goes idle, and stays
/// within its bounds.
@Suite struct SpinWindowTests {
    @Test func startsAtTheBase() {
        #expect(SpinWindow(base: 50_000, limit: 400_000).current == 50_000)
    }

    @Test func aRequestSoonAfterGivingUpDoublesTheWindowUpToTheLimit() {
        var w = SpinWindow(base: 50_000, limit: 400_000)
        var seen: [UInt64] = []
        for _ in 0..<5 {
            w.sleptAfterSpin(30_000)
            seen.append(w.current)
        }
        #expect(seen == [100_000, 200_000, 400_000, 400_000, 400_000])
        // A sleep of exactly the limit still counts as "soon".
        var edge = SpinWindow(base: 50_000, limit: 400_000)
        edge.sleptAfterSpin(400_000)
        #expect(edge.current == 100_000)
    }

    @Test func idlenessHalvesTheWindowDownToTheBase() {
        var w = SpinWindow(base: 50_000, limit: 400_000)
        for _ in 0..<3 { w.sleptAfterSpin(1_000) }
        #expect(w.current == 400_000)
        var seen: [UInt64] = []
        for _ in 0..<5 {
            w.sleptAfterSpin(400_001)
            seen.append(w.current)
        }
        #expect(seen == [200_000, 100_000, 50_000, 50_000, 50_000])
    }

    @Test func aLimitOfZeroNeverSpins() {
        var w = SpinWindow(base: 50_000, limit: 0)
        #expect(w.current == 0)
        w.sleptAfterSpin(10)
        w.sleptAfterSpin(10_000_000)
        #expect(w.current == 0)
    }

    @Test func aLimitBelowTheBaseIsAFixedSpin() {
        var w = SpinWindow(base: 50_000, limit: 20_000)
        #expect(w.current == 20_000)
        w.sleptAfterSpin(5_000)
        #expect(w.current == 20_000)
        w.sleptAfterSpin(1_000_000)
        #expect(w.current == 20_000)
    }
}
