import Testing
@testable import Storage

/// Client latency windows roll over by the clock and carry whether the mover ran.
@Suite struct ClientLatencyTests {
    static let second: Int64 = 1_000_000_000

    @Test func windowsRollByTheClockAndQuietTimeLeavesNone() {
        let latency = ClientLatency()
        let t0 = Monotonic.nanoseconds()
        latency.record(seconds: 0.001, now: t0)
        latency.record(seconds: 0.002, now: t0 + Self.second / 2)
        #expect(latency.takeWindows(now: t0 + Self.second / 2).isEmpty)  // still open
        // A minute of nothing, then an operation: one window closed, none for the quiet minute.
        latency.record(seconds: 0.003, now: t0 + 60 * Self.second)
        let first = latency.takeWindows(now: t0 + 60 * Self.second)
        #expect(first.map(\.operations) == [2])
        #expect(first.first?.samples.sorted() == [0.001, 0.002])
        #expect(first.first?.moving == false)
        #expect(latency.takeWindows(now: t0 + 60 * Self.second).isEmpty)  // taken once
        // The mover ran in the next window: it is one of movement; so is a window of
        // movement without clients.
        latency.markMovement(now: t0 + 60 * Self.second + 10)
        latency.markMovement(now: t0 + 62 * Self.second)
        let next = latency.takeWindows(now: t0 + 64 * Self.second)
        #expect(next.map(\.operations) == [1, 0])
        #expect(next.map(\.moving) == [true, true])
    }

    @Test func onlyTheLastWindowsAreKept() {
        let latency = ClientLatency()
        let t0 = Monotonic.nanoseconds()
        for i in 0..<(ClientLatency.keptWindows + 10) { latency.record(seconds: Double(i), now: t0 + Int64(i) * Self.second) }
        let windows = latency.takeWindows(now: t0 + 1000 * Self.second)
        #expect(windows.count == ClientLatency.keptWindows)
        #expect(windows.last?.samples == [Double(ClientLatency.keptWindows + 9)])
    }

    @Test func aBusyWindowKeepsABoundedSample() {
        let latency = ClientLatency()
        let t0 = Monotonic.nanoseconds()
        for i in 0..<(3 * ClientLatency.capacity) { latency.record(seconds: Double(i), now: t0) }
        let w = latency.takeWindows(now: t0 + Self.second)
        #expect(w.first?.operations == 3 * ClientLatency.capacity)
        #expect(w.first?.samples.count == ClientLatency.capacity)
        // Later operations replaced earlier ones: the sample reaches the window's end.
        #expect((w.first?.samples.max() ?? 0) > Double(2 * ClientLatency.capacity))
    }
}
