import Testing
import TestSupport
@testable import Placement

/// Placement must never change between releases: these known answers (computed by an
/// independent Python transcription of docs/placement.md) pin the hash
/// functions. If one of these fails, every PG in every deployed cluster would move.
@Suite struct StableHashTests {
    @Test func mix64KnownAnswers() {
        #expect(StableHash.mix64(0) == 0)
        #expect(StableHash.mix64(1) == 0xb456_bcfc_34c2_cb2c)
        #expect(StableHash.mix64(0xdead_beef) == 0xd24b_d59f_862a_1dac)
    }

    @Test func nameKnownAnswers() {
        #expect(StableHash.name("") == 0xefd0_1f60_ba99_2926)
        #expect(StableHash.name("host-1") == 0x28ad_179c_6f90_86dc)
        #expect(StableHash.name("r0-h0-d0") == 0x0b73_264c_7113_15e9)
    }

    @Test func drawKeyKnownAnswer() {
        #expect(StableHash.poolSeed(1) == 0xc6db_9c4c_817d_72cd)
        #expect(StableHash.drawKey(seed: StableHash.poolSeed(1), pg: 7, position: 2, round: 0) == 0xc1f7_1f5f_3351_8ad1)
    }

    @Test func fixedLogMatchesExactValuesAtPowersOfTwo() {
        for n: UInt64 in 0..<64 {
            #expect(FixedLog.log2Q32(1 << n) == n << 32)
        }
    }

    /// Oracle: Double's log2 (only here; placement itself never calls libm).
    @Test func fixedLogIsWithin2e7OfLog2() {
        var rng = SeededRandom(seed: 11)
        var worst = 0.0
        for _ in 0..<100_000 {
            let x = UInt64.random(in: 1...(1 << 48), using: &rng)
            let fixed = Double(FixedLog.log2Q32(x)) / 4_294_967_296
            worst = max(worst, abs(fixed - log2Double(x)))
        }
        #expect(worst < 2e-7, "worst error \(worst)")
    }

    @Test func fixedLogIsMonotonic() {
        var previous: UInt64 = 0
        for x: UInt64 in 1..<200_000 {
            let l = FixedLog.log2Q32(x)
            #expect(l >= previous)
            previous = l
        }
    }

    @Test func precedesIsByteOrder() {
        #expect(StableHash.precedes("a", "b"))
        #expect(StableHash.precedes("B", "a"))  // uppercase bytes sort first
        #expect(!StableHash.precedes("é", "e"))  // 0xC3 > 0x65
        #expect(StableHash.precedes("e\u{301}", "é"))  // decomposed vs composed: bytes differ, String == says equal
    }
}

private func log2Double(_ x: UInt64) -> Double {
    // log2 via the exponent and a series on the mantissa would be overkill; Foundation-free:
    var value = Double(x)
    var exponent = 0.0
    while value >= 2 { value /= 2; exponent += 1 }
    // value in [1, 2): log2(value) = ln(value)/ln 2 with ln by atanh series
    let y = (value - 1) / (value + 1)
    var term = y, sum = 0.0, k = 1.0
    let y2 = y * y
    while abs(term) > 1e-18 {
        sum += term / k
        term *= y2
        k += 2
    }
    return exponent + 2 * sum / 0.693_147_180_559_945_309_4
}
