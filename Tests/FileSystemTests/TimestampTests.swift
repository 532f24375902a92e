import FileSystem
import Testing

@Suite struct TimestampTests {
    @Test func clampsWhatAnInt64OfNanosecondsCannotHold() {
        #expect(Timestamp.nanoseconds(seconds: 1, nanoseconds: 5) == 1_000_000_005)
        #expect(Timestamp.nanoseconds(seconds: -1, nanoseconds: 999_999_999) == -1)
        #expect(Timestamp.nanoseconds(seconds: 32_503_680_000, nanoseconds: 0) == .max, "year 3000")
        #expect(Timestamp.nanoseconds(seconds: -32_503_680_000, nanoseconds: 0) == .min)
        #expect(Timestamp.nanoseconds(seconds: 9_223_372_036, nanoseconds: 999_999_999) == .max, "the sum overflows")
        #expect(Timestamp.nanoseconds(seconds: .max, nanoseconds: 0) == .max)
    }

    /// Parts always have 0 ≤ nanoseconds < 10⁹ and give the same instant back.
    @Test func partsAreATimespecOfTheSameInstant() {
        for ns: Int64 in [0, 1, -1, 999_999_999, -999_999_999, -1_000_000_000, 1_500_000_000, -1_500_000_000, .max, .min] {
            let (s, n) = Timestamp.parts(ns)
            #expect((0..<1_000_000_000).contains(n), "\(ns)")
            #expect(Timestamp.nanoseconds(seconds: s, nanoseconds: n) == ns, "\(ns)")
        }
        #expect(Timestamp.parts(-1) == (-1, 999_999_999))
    }
}
