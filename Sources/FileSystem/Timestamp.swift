/// Times are kept as nanoseconds since the epoch in an Int64: 1677-09-21 to 2262-04-11. A
/// time set outside that range is clamped to its nearest end, as Linux filesystems clamp to
/// theirs (ext4: 1901 to 2446) — never a trap: `touch -d 3000-01-01` once killed the daemon.
public enum Timestamp {
    public static func nanoseconds(seconds: Int, nanoseconds: Int) -> Int64 {
        let (scaled, overflow) = Int64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = scaled.addingReportingOverflow(Int64(nanoseconds))
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }

    /// Seconds and nanoseconds (0 ..< 10⁹, as a timespec must have them, also before 1970).
    public static func parts(_ ns: Int64) -> (seconds: Int, nanoseconds: Int) {
        let (q, r) = ns.quotientAndRemainder(dividingBy: 1_000_000_000)
        return r < 0 ? (Int(q) - 1, Int(r) + 1_000_000_000) : (Int(q), Int(r))
    }
}
