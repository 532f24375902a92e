/// How long the FUSE leader keeps reading for the next request after a quick one before it
/// sleeps, adapted to the gaps between requests the way the kernel's `haltpoll` cpuidle
/// governor adapts its poll: a request that came soon after the leader gave up (within
/// `limit`) means the window was too short, so it doubles; a sleep longer than `limit`
/// means the mount went idle, so it halves, never below `base`.
///
/// Why adapt: a metadata operation is a chain of round trips whose gaps are the
/// application's own time plus the wake-up of its halted vCPU — 30–150 µs on this machine
/// kind. A fixed 50 µs missed most of them (the leader then sleeps, and the next request
/// wakes it: two wake-ups instead of none); a fixed long spin costs a CPU for its whole
/// length after the last request of every burst. Pure logic, no clock: the loop passes the
/// sleep it measured.
struct SpinWindow: Equatable {
    /// The shortest window, where it starts and where idleness brings it back.
    let base: UInt64
    /// The longest window, and the sleep past which the mount counts as idle.
    let limit: UInt64
    /// The window the next spin uses, in nanoseconds; 0 when spinning is off.
    private(set) var current: UInt64

    /// `limit` 0 turns spinning off; `base` is capped at `limit`.
    init(base: UInt64, limit: UInt64) {
        self.limit = limit
        self.base = min(base, limit)
        current = self.base
    }

    /// The leader spun `current` without a request, then slept `nanoseconds` until one came
    /// (or until it stopped waiting).
    mutating func sleptAfterSpin(_ nanoseconds: UInt64) {
        guard limit > 0 else { return }
        if nanoseconds <= limit {
            current = min(limit, max(base, current * 2))
        } else {
            current = max(base, current / 2)
        }
    }
}
