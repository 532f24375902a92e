import Glibc

/// CLOCK_MONOTONIC: for silences, deadlines and durations, which wall-clock steps must not
/// stretch or cut short.
public enum Monotonic {
    public static func milliseconds() -> Int64 { nanoseconds() / 1_000_000 }

    public static func nanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
