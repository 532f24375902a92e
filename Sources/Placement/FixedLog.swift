/// Base-2 logarithm in 32.32 fixed point, computed with integer arithmetic only.
///
/// straw2 needs `ln(u) / weight`; libm's `log` may round differently between C library
/// versions, which would move PGs between releases. This one is exact integer math:
/// a 1025-entry table of `log2(1 + i/1024)` built bit by bit (repeated squaring with
/// 128-bit products), then linear interpolation on the next 22 bits. Absolute error is
/// below 2e-7, far under the spacing of distinct straws.
enum FixedLog {
    static let tableBits = 10
    static let table: [UInt64] = buildTable()

    /// `log2(x)` scaled by 2^32, for `x >= 1`.
    @inline(__always)
    static func log2Q32(_ x: UInt64) -> UInt64 {
        precondition(x > 0, "log2 of zero")
        let n = 63 - UInt64(x.leadingZeroBitCount)  // integer part
        let m = x << (63 - n)  // normalized: top bit set, m / 2^63 in [1, 2)
        let index = Int((m >> (63 - UInt64(tableBits))) & ((1 << UInt64(tableBits)) - 1))
        let interpolationBits: UInt64 = 22
        let t = (m >> (63 - UInt64(tableBits) - interpolationBits)) & ((1 << interpolationBits) - 1)
        let lo = table[index]
        let hi = table[index + 1]
        return (n << 32) + lo + (((hi - lo) * t) >> interpolationBits)
    }

    /// Entry i is floor(log2(1 + i/1024) * 2^32), i in 0...1024.
    private static func buildTable() -> [UInt64] {
        let size = 1 << tableBits
        var result = [UInt64](repeating: 0, count: size + 1)
        for i in 0...size {
            result[i] = fractionalLog2Q32(mantissaQ62: (1 << 62) + (UInt64(i) << (62 - UInt64(tableBits))))
        }
        return result
    }

    /// log2(y) * 2^32 for y in [1, 2], y given in 2.62 fixed point.
    /// Classic bit-by-bit algorithm: square y; if y >= 2, emit a 1 bit and halve y.
    private static func fractionalLog2Q32(mantissaQ62 start: UInt64) -> UInt64 {
        let two: UInt64 = 1 << 63  // 2.0 in 2.62
        if start >= two { return 1 << 32 }  // log2(2) = 1
        var y = start
        var bits: UInt64 = 0
        for _ in 0..<32 {
            // y * y in 4.124; shift back to 2.62 (drop 62 bits).
            let product = y.multipliedFullWidth(by: y)
            y = (product.high << 2) | (product.low >> 62)
            bits <<= 1
            if y >= two {
                bits |= 1
                y >>= 1
            }
        }
        return bits
    }
}
