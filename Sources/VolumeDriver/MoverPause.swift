/// How long the daemon's mover waits before its next step: not at all while steps move
/// something, a second when there is nothing to do, and after steps that only failed twice
/// as long each time, up to `maximumMs`.
struct MoverPause: Sendable {
    static let idleMs = 1_000
    static let maximumMs = 60_000
    private(set) var failedMs = 0

    mutating func next(moved: Int, failed: Bool) -> Int {
        if moved > 0 {
            failedMs = 0
            return 0
        }
        guard failed else {
            failedMs = 0
            return Self.idleMs
        }
        failedMs = min(Self.maximumMs, max(Self.idleMs, failedMs * 2))
        return failedMs
    }
}
